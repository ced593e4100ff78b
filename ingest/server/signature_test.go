package server_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/shared/apikey"
)

// signingKey creates a key that requires signed uploads.
func (s *stack) signingKey(t *testing.T) (key, secret string) {
	t.Helper()
	plaintext, k, err := apikey.Generate("signer", apikey.ModeLive, []string{apikey.ScopeMessagesSend}, []string{phone}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if k.SigningSecret, err = apikey.NewSigningSecret(); err != nil {
		t.Fatal(err)
	}
	k.RequireSignature = true
	if err := s.keys.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return plaintext, k.SigningSecret
}

// TestSignedUploads: a key that requires signing gets its upload through
// only with a valid, fresh signature of the exact body; anything else is
// 401 invalid_signature with nothing staged or queued. SIGNATURE_ENFORCEMENT
// off keeps unsigned uploads working.
func TestSignedUploads(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.respond(t, succeed)
	enforcing := s.replica(t, server.Config{EnforceSignatures: true}, nil)
	off := s.replica(t, server.Config{EnforceSignatures: false}, nil)
	key, secret := s.signingKey(t)

	f := form{fields: [][2]string{{"messaging_product", "whatsapp"}}, file: fixture(t, "accept/image.jpg"), partType: "image/jpeg"}
	r, ct := f.encode(t)
	body, _ := io.ReadAll(r)
	other := append([]byte(nil), body...)
	other[len(other)/2] ^= 0xff // one byte of the file changed after signing
	now := time.Now()

	tests := []struct {
		name      string
		srv       *stack
		key       string
		signature string
		body      []byte
		want      int
	}{
		{"valid signature", enforcing, key, server.Sign(secret, now, body), body, 200},
		{"missing signature", enforcing, key, "", body, 401},
		{"other secret", enforcing, key, server.Sign("sfsig_wrong", now, body), body, 401},
		{"body changed after signing", enforcing, key, server.Sign(secret, now, body), other, 401},
		{"signed six minutes ago", enforcing, key, server.Sign(secret, now.Add(-6*time.Minute), body), body, 401},
		{"signed six minutes ahead", enforcing, key, server.Sign(secret, now.Add(6*time.Minute), body), body, 401},
		{"malformed header", enforcing, key, "v1=abc", body, 401},
		{"key without signing needs none", enforcing, s.liveKey, "", body, 200},
		{"enforcement off", off, key, "", body, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queued := tt.srv.queued(t)
			f := form{rawBody: tt.body, rawCT: ct, key: tt.key, header: http.Header{}}
			if tt.signature != "" {
				f.header.Set(server.HeaderSignature, tt.signature)
			}
			res := tt.srv.post(t, f)
			if res.Status != tt.want {
				t.Fatalf("%d %s; want %d", res.Status, res.Raw, tt.want)
			}
			if tt.want == 401 {
				if res.errCode() != "invalid_signature" {
					t.Errorf("code %q, want invalid_signature", res.errCode())
				}
				if n, q := tt.srv.staged(t), tt.srv.queued(t); n != 0 || q != queued {
					t.Errorf("a refused upload left %d staged objects and %d new jobs", n, q-queued)
				}
			}
		})
	}
}
