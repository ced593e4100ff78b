package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/localstack"
	"github.com/sigfollow/media/shared/testenv"
)

// TestSignedUploadsEndToEnd: a key created with -require-signature gets its
// signing secret printed once; through the real server, its uploads need a
// valid X-SigFollow-Signature, and every /media answer carries the default
// rate-limit headers. A key created with its own rate limit is held to it.
func TestSignedUploadsEndToEnd(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1})
	printed := p.keysCreate(t, "-name", "signer", "-phone", e2ePhone, "-require-signature")
	key, secret := printed["key"], printed["signing secret"]
	if key == "" || !strings.HasPrefix(secret, "sfsig_") {
		t.Fatalf("create printed %q; want a key and a signing secret", printed)
	}

	body, contentType := textForm("signed upload\n")
	send := func(signature string) (int, string, http.Header) {
		return p.postSigned(t, key, signature, body, contentType)
	}
	if status, code, _ := send(""); status != http.StatusUnauthorized || code != "invalid_signature" {
		t.Errorf("unsigned: %d %s; want 401 invalid_signature", status, code)
	}
	status, code, hdr := send(server.Sign(secret, time.Now(), body))
	if status != http.StatusOK {
		t.Fatalf("signed: %d %s; want 200", status, code)
	}
	if hdr.Get("RateLimit-Limit") != "60" || hdr.Get("RateLimit-Policy") != "60;w=6" {
		t.Errorf("RateLimit-Limit %q, RateLimit-Policy %q; want the defaults 60 and 60;w=6", hdr.Get("RateLimit-Limit"), hdr.Get("RateLimit-Policy"))
	}

	// A key created with its own rate limit is held to it.
	tight := p.keysCreate(t, "-name", "tight", "-phone", e2ePhone, "-rate-per-minute", "1", "-rate-burst", "1")["key"]
	txt := []byte("rate limited\n")
	if status, body := p.upload(t, tight, e2ePhone, txt, "r.txt", "text/plain"); status != http.StatusOK {
		t.Fatalf("first upload with a 1-per-minute key: %d %v", status, body)
	}
	if status, body := p.upload(t, tight, e2ePhone, txt, "r.txt", "text/plain"); status != http.StatusTooManyRequests {
		t.Errorf("second upload with a 1-per-minute key: %d %v; want 429", status, body)
	}

	// The worker deletes the staged file just after answering.
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// textForm is a multipart upload of a text file.
func textForm(text string) ([]byte, string) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("messaging_product", "whatsapp")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="signed.txt"`)
	h.Set("Content-Type", "text/plain")
	part, _ := w.CreatePart(h)
	_, _ = part.Write([]byte(text))
	_ = w.Close()
	return body.Bytes(), w.FormDataContentType()
}

// postSigned posts body with key and, if not empty, signature, and returns
// the status, the error code if any, and the headers.
func (p *pipeline) postSigned(t *testing.T, key, signature string, body []byte, contentType string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/"+e2ePhone+"/media", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Cache-Control", "no-cache")
	if signature != "" {
		req.Header.Set(server.HeaderSignature, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b.Error.Code, resp.Header
}

// keysCreate runs `ingest keys create args...` against the pipeline's NATS
// and returns the "label: value" lines it printed, by label.
func (p *pipeline) keysCreate(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"ingest", "keys", "create"}, args...), mapEnv(p.env), &out, io.Discard); err != nil {
		t.Fatalf("keys create: %v\n%s", err, out.String())
	}
	printed := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if label, value, ok := strings.Cut(line, ":"); ok {
			printed[label] = strings.TrimSpace(value)
		}
	}
	return printed
}

// TestEdgeSettingsAreValidated: a bad rate limit, signature or timeout
// setting stops ingest at start with a message naming the variable.
func TestEdgeSettingsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown enforcement", map[string]string{"SIGNATURE_ENFORCEMENT": "warn"}, "SIGNATURE_ENFORCEMENT"},
		{"negative rate", map[string]string{"RATE_LIMIT_PER_MINUTE": "-1"}, "RATE_LIMIT_PER_MINUTE"},
		{"zero burst", map[string]string{"RATE_LIMIT_BURST": "0"}, "RATE_LIMIT_BURST"},
		{"negative idle timeout", map[string]string{"BODY_IDLE_TIMEOUT": "-1s"}, "BODY_IDLE_TIMEOUT"},
		{"zero header timeout", map[string]string{"READ_HEADER_TIMEOUT": "0s"}, "READ_HEADER_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), []string{"ingest", "env"}, mapEnv(tt.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v; want an error naming %s", err, tt.want)
			}
		})
	}
	if err := run(context.Background(), []string{"ingest", "env"}, mapEnv(map[string]string{"RATE_LIMIT_PER_MINUTE": "0"}), io.Discard, io.Discard); err != nil {
		t.Errorf("RATE_LIMIT_PER_MINUTE=0 (off) refused: %v", err)
	}
}

// TestInlineDefault: INLINE_MAX_BYTES's default is the one the bench, the
// fault run and the README assume.
func TestInlineDefault(t *testing.T) {
	var cfg Config
	if err := envconfig.Parse(&cfg, mapEnv(nil)); err != nil {
		t.Fatal(err)
	}
	if cfg.InlineMaxBytes != job.DefaultInlineMaxBytes {
		t.Errorf("INLINE_MAX_BYTES defaults to %d, job.DefaultInlineMaxBytes is %d", cfg.InlineMaxBytes, job.DefaultInlineMaxBytes)
	}
}

// TestInlineLimitMustFitNATS: ingest refuses to start when a job carrying
// a file of INLINE_MAX_BYTES would not fit the NATS server's max_payload,
// rather than failing each such upload later.
func TestInlineLimitMustFitNATS(t *testing.T) {
	s, err := localstack.StartNATS(localstack.NATSConfig{Port: -1, StoreDir: t.TempDir(), MaxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, []string{"ingest"}, mapEnv(map[string]string{"NATS_URL": s.ClientURL(), "INGEST_ADDR": "127.0.0.1:0",
		"S3_ENDPOINT": "http://127.0.0.1:1", "LOG_LEVEL": "error"}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max_payload of 65536") || !strings.Contains(err.Error(), fmt.Sprintf("INLINE_MAX_BYTES=%d", job.DefaultInlineMaxBytes)) {
		t.Fatalf("run = %v; want a refusal naming INLINE_MAX_BYTES and the server's max_payload", err)
	}
}
