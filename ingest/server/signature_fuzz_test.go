package server

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseSignature: any X-SigFollow-Signature value is parsed without
// panicking, and what parses is a positive timestamp and a 32-byte MAC;
// a value made by Sign always parses back to its own parts.
func FuzzParseSignature(f *testing.F) {
	f.Add("t=1700000000,v1=" + string(bytes.Repeat([]byte("ab"), 32)))
	f.Add(Sign("sfsig_secret", time.Unix(1700000000, 0), []byte("body")))
	f.Add("t=1700000000,v1=zz,v0=00")
	f.Add("v1=,t=")
	f.Add("t=-1,v1=" + string(bytes.Repeat([]byte("00"), 32)))
	f.Add(",,,=,t==1")
	f.Fuzz(func(t *testing.T, header string) {
		ts, v1, ok := parseSignature(header)
		if ok && (ts <= 0 || len(v1) != 32) {
			t.Fatalf("parseSignature(%q) = %d, %x, true", header, ts, v1)
		}
		if ts > 0 {
			signed := Sign("k", time.Unix(ts, 0), []byte(header))
			if ts2, v2, ok := parseSignature(signed); !ok || ts2 != ts || len(v2) != 32 {
				t.Fatalf("Sign's own value %q does not parse back", signed)
			}
		}
	})
}
