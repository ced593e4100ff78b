package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/ratelimit"
)

// replica starts another ingest server over the stack's NATS and MinIO,
// configured by cfg (Bucket and timeouts are filled in), as a second
// replica behind a load balancer would be.
func (s *stack) replica(t *testing.T, cfg server.Config, limiter *ratelimit.Limiter) *stack {
	t.Helper()
	cfg.Bucket, cfg.SyncTimeout, cfg.PublishTimeout = bucket, 20*time.Second, 2*time.Second
	srv, err := server.New(cfg, server.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: apikey.NewAuthenticator(s.keys, s.devKey),
		Receiver: upload.NewReceiver(t.TempDir(), 1<<20), Store: s.store, NATS: s.nc, JS: s.js, Results: s.topo.Results,
		Limiter: limiter,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	r := *s
	r.URL = ts.URL
	return &r
}

// TestRateLimitIsSharedByReplicas: two ingest servers over one NATS draw on
// one budget per key; past it, 429 with Retry-After, nothing staged or
// queued; other keys are unaffected.
func TestRateLimitIsSharedByReplicas(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.respond(t, succeed)
	limit := ratelimit.Limit{PerMinute: 1, Burst: 3} // no refill within the test
	cfg := server.Config{RateLimit: limit}
	a := s.replica(t, cfg, ratelimit.New(s.topo.RateLimits, nil))
	b := s.replica(t, cfg, ratelimit.New(s.topo.RateLimits, nil))
	jpeg := fixture(t, "accept/image.jpg")
	upload := form{fields: [][2]string{{"messaging_product", "whatsapp"}}, file: jpeg, partType: "image/jpeg", key: s.liveKey}

	for i, replica := range []*stack{a, b, a} {
		r := replica.post(t, upload)
		if r.Status != 200 {
			t.Fatalf("upload %d: %d %s; want 200", i, r.Status, r.Raw)
		}
		if got, want := r.Header.Get("RateLimit-Remaining"), strconv.Itoa(2-i); got != want {
			t.Errorf("upload %d: RateLimit-Remaining %q, want %q", i, got, want)
		}
		if r.Header.Get("RateLimit-Limit") != "3" || r.Header.Get("RateLimit-Policy") != "3;w=180" {
			t.Errorf("upload %d: RateLimit-Limit %q, RateLimit-Policy %q; want 3 and 3;w=180", i,
				r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Policy"))
		}
	}
	queued := s.queued(t)
	r := b.post(t, upload)
	if r.Status != 429 || r.errCode() != "rate_limited" {
		t.Fatalf("fourth upload: %d %s; want 429 rate_limited", r.Status, r.Raw)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q; want 1..60 seconds", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Remaining %q on 429, want 0", r.Header.Get("RateLimit-Remaining"))
	}
	if s.staged(t) != 0 || s.queued(t) != queued {
		t.Errorf("a refused upload left %d staged objects and queued %d jobs", s.staged(t), s.queued(t)-queued)
	}

	other := s.createKey(t, []string{apikey.ScopeMessagesSend}, []string{phone})
	upload.key = other
	if r := a.post(t, upload); r.Status != 200 {
		t.Fatalf("another key: %d %s; want 200 (its own budget)", r.Status, r.Raw)
	}
}

// brokenKV fails every call, as a bucket does while NATS is unreachable.
type brokenKV struct{}

var errUnreachable = errors.New("nats: no servers available")

func (brokenKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, errUnreachable
}

func (brokenKV) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 0, errUnreachable
}

func (brokenKV) Update(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, errUnreachable
}

// TestRateLimitFailsOpen: when the shared state cannot be reached, uploads
// go through (without RateLimit headers) rather than fail.
func TestRateLimitFailsOpen(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.respond(t, succeed)
	a := s.replica(t, server.Config{RateLimit: ratelimit.Limit{PerMinute: 1, Burst: 1}}, ratelimit.New(brokenKV{}, nil))
	upload := form{fields: [][2]string{{"messaging_product", "whatsapp"}}, file: fixture(t, "accept/image.jpg"), partType: "image/jpeg", key: s.liveKey}
	for i := range 2 {
		r := a.post(t, upload)
		if r.Status != 200 || r.Header.Get("RateLimit-Remaining") != "" {
			t.Fatalf("upload %d with the limiter down: %d, RateLimit-Remaining %q; want 200 without the header", i, r.Status, r.Header.Get("RateLimit-Remaining"))
		}
	}
}

// TestKeyOwnRateLimit: a key with its own limit is held to it, while other
// keys keep the server's.
func TestKeyOwnRateLimit(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.respond(t, succeed)
	a := s.replica(t, server.Config{RateLimit: ratelimit.Limit{PerMinute: 1, Burst: 5}}, ratelimit.New(s.topo.RateLimits, nil))
	plaintext, k, err := apikey.Generate("tight", apikey.ModeLive, []string{apikey.ScopeMessagesSend}, []string{phone}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.RateLimitPerMinute, k.RateLimitBurst = 1, 1
	if err := s.keys.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	upload := form{fields: [][2]string{{"messaging_product", "whatsapp"}}, file: fixture(t, "accept/image.jpg"), partType: "image/jpeg"}
	tests := []struct {
		key        string
		want       int
		wantLimit  string
		wantPolicy string
	}{
		{plaintext, 200, "1", "1;w=60"},
		{plaintext, 429, "1", "1;w=60"},
		{s.liveKey, 200, "5", "5;w=300"},
		{s.liveKey, 200, "5", "5;w=300"},
	}
	for i, tt := range tests {
		upload.key = tt.key
		r := a.post(t, upload)
		if r.Status != tt.want || r.Header.Get("RateLimit-Limit") != tt.wantLimit || r.Header.Get("RateLimit-Policy") != tt.wantPolicy {
			t.Errorf("upload %d: %d, RateLimit-Limit %q, RateLimit-Policy %q; want %d, %s, %s", i, r.Status,
				r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Policy"), tt.want, tt.wantLimit, tt.wantPolicy)
		}
	}
}
