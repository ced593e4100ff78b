package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sigfollow/media/shared/apikey"
)

// HeaderSignature carries a request's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, t + "." + raw body)>".
const HeaderSignature = "X-SigFollow-Signature"

// signatureTolerance is how far a signature's timestamp may be from now.
const signatureTolerance = 5 * time.Minute

// maxEpilogue is how many bytes after the multipart close delimiter are read
// into the signature; a longer tail fails the check.
const maxEpilogue = 4 << 10

// Signature enforcement settings (SIGNATURE_ENFORCEMENT).
const (
	// SignatureEnforce checks the signature of every request made with a
	// key that requires one.
	SignatureEnforce = "enforce"
	// SignatureOff checks no signatures, as before signing existed.
	SignatureOff = "off"
)

// signedBody hashes the raw request body as it streams, for the HMAC.
type signedBody struct {
	r   io.ReadCloser
	mac hash.Hash
	t   time.Time
	v1  []byte
}

func (b *signedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.mac.Write(p[:n])
	return n, err
}

func (b *signedBody) Close() error { return b.r.Close() }

// startSignature checks the signature header of a request made with key
// before its body is read, and, if the key requires signing, wraps the body
// so that it is hashed as it streams. It returns nil if no check applies.
func (s *Server) startSignature(req *http.Request, key *apikey.Key) (*signedBody, error) {
	if !s.cfg.EnforceSignatures || !key.RequireSignature {
		return nil, nil
	}
	header := req.Header.Get(HeaderSignature)
	if header == "" {
		return nil, s.signatureError("missing", "this API key requires signed uploads: send "+HeaderSignature)
	}
	ts, v1, ok := parseSignature(header)
	if !ok {
		return nil, s.signatureError("malformed", HeaderSignature+" must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
	}
	t := time.Unix(ts, 0)
	if d := time.Since(t); d > signatureTolerance || d < -signatureTolerance {
		return nil, s.signatureError("expired", "the signature's timestamp is more than 5 minutes from the server's clock")
	}
	mac := hmac.New(sha256.New, []byte(key.SigningSecret))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	b := &signedBody{r: req.Body, mac: mac, t: t, v1: v1}
	req.Body = b
	return b, nil
}

// verify finishes the check once the form has been read: it reads what
// remains of the body into the hash (the epilogue, if any) and compares in
// constant time.
func (s *Server) verify(b *signedBody) error {
	if b == nil {
		return nil
	}
	n, err := io.Copy(io.Discard, io.LimitReader(b, maxEpilogue+1))
	if err != nil || n > maxEpilogue {
		return s.signatureError("mismatch", "the signature does not match the request body")
	}
	if !hmac.Equal(b.mac.Sum(nil), b.v1) {
		return s.signatureError("mismatch", "the signature does not match the request body")
	}
	s.metrics.signatures.WithLabelValues("valid").Inc()
	return nil
}

func (s *Server) signatureError(result, message string) error {
	s.metrics.signatures.WithLabelValues(result).Inc()
	return &apiError{Status: http.StatusUnauthorized, Code: CodeInvalidSignature, Message: message}
}

// parseSignature splits "t=<unix>,v1=<hex>"; unknown fields are ignored so
// that a later scheme can be sent alongside v1.
func parseSignature(h string) (int64, []byte, bool) {
	var (
		ts  int64
		v1  []byte
		err error
	)
	for _, field := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "t":
			ts, err = strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, nil, false
			}
		case "v1":
			v1, err = hex.DecodeString(v)
			if err != nil || len(v1) != sha256.Size {
				return 0, nil, false
			}
		}
	}
	return ts, v1, ts > 0 && v1 != nil
}

// Sign returns the X-SigFollow-Signature value for body signed with secret
// at t: what a client computes.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
