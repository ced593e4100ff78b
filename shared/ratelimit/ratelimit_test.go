package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

func TestGCRA(t *testing.T) {
	limit := Limit{PerMinute: 60, Burst: 3} // one a second, three at once
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name          string
		arrivals      []time.Duration // since t0
		wantAllowed   []bool
		wantRemaining int           // after the last arrival
		wantRetry     time.Duration // after the last arrival
	}{
		{"a burst fits", []time.Duration{0, 0, 0}, []bool{true, true, true}, 0, 0},
		{"one past the burst waits one interval", []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}, 0, time.Second},
		{"the budget refills at the rate", []time.Duration{0, 0, 0, time.Second}, []bool{true, true, true, true}, 0, 0},
		{"a quiet spell restores the whole burst", []time.Duration{0, 10 * time.Second}, []bool{true, true}, 2, 0},
		{"half an interval is not enough", []time.Duration{0, 0, 0, 500 * time.Millisecond}, []bool{true, true, true, false}, 0, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tat time.Time
			var d Decision
			for i, at := range tt.arrivals {
				d, tat = gcra(t0.Add(at), tat, limit)
				if d.Allowed != tt.wantAllowed[i] {
					t.Fatalf("arrival %d at +%v: allowed = %v, want %v", i, at, d.Allowed, tt.wantAllowed[i])
				}
			}
			if d.Remaining != tt.wantRemaining || d.RetryAfter != tt.wantRetry || d.Limit != 3 {
				t.Fatalf("last decision %+v; want remaining %d, retry after %v, limit 3", d, tt.wantRemaining, tt.wantRetry)
			}
		})
	}
}

// TestContendedKeyIsCountedExactly: many concurrent requests for one key
// on three replicas all get an answer (no conflict is given up on), and
// every one is counted.
func TestContendedKeyIsCountedExactly(t *testing.T) {
	kv := rateLimits(t)
	frozen := time.Now()
	clock := func() time.Time { return frozen }
	replicas := []*Limiter{New(kv, clock), New(kv, clock), New(kv, clock)}
	limit := Limit{PerMinute: 60, Burst: 1000}
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond) // as ingest bounds it
			defer cancel()
			if d, err := replicas[i%3].Allow(ctx, "busy", limit); err != nil || !d.Allowed {
				t.Errorf("request %d: %+v, %v", i, d, err)
			}
		})
	}
	wg.Wait()
	if d, err := replicas[0].Allow(context.Background(), "busy", limit); err != nil || d.Remaining != 1000-151 {
		t.Fatalf("after 151 requests: %+v, %v; want %d remaining", d, err, 1000-151)
	}
}

func rateLimits(t *testing.T) KV {
	t.Helper()
	_, js := testenv.JetStream(t, testenv.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return topo.RateLimits
}

// TestSharedBudget runs two limiters (two ingest replicas) over one bucket,
// concurrently: together they allow exactly the burst.
func TestSharedBudget(t *testing.T) {
	kv := rateLimits(t)
	ctx := context.Background()
	frozen := time.Now()
	clock := func() time.Time { return frozen } // no refill during the test
	replicas := []*Limiter{New(kv, clock), New(kv, clock)}
	limit := Limit{PerMinute: 60, Burst: 10}

	var allowed, denied atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			d, err := replicas[i%2].Allow(ctx, "key1", limit)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			} else {
				denied.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 10 || denied.Load() != 20 {
		t.Fatalf("allowed %d, denied %d; want 10 and 20", allowed.Load(), denied.Load())
	}
	// Another key has its own budget.
	if d, err := replicas[0].Allow(ctx, "key2", limit); err != nil || !d.Allowed || d.Remaining != 9 {
		t.Fatalf("other key: %+v, %v; want allowed with 9 remaining", d, err)
	}
}

// BenchmarkAllow measures one decision against an embedded NATS, one key,
// from many goroutines (as one busy API key on one replica).
func BenchmarkAllow(b *testing.B) {
	_, js := testenv.JetStream(b, testenv.NATS(b))
	topo, err := queue.Declare(b.Context(), js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	l := New(topo.RateLimits, nil)
	limit := Limit{PerMinute: 60000, Burst: 1 << 20}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Allow(b.Context(), "bench", limit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// countingKV counts the reads of a real bucket.
type countingKV struct {
	KV
	gets atomic.Int32
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.gets.Add(1)
	return c.KV.Get(ctx, key)
}

// TestRememberedStateSkipsTheRead: a replica alone on a key decides from
// the state it wrote, without reading it again; once another replica has
// written, its stale state is refused by the store, read afresh, and the
// decision counts the other replica's requests.
func TestRememberedStateSkipsTheRead(t *testing.T) {
	kv := rateLimits(t)
	ctx := context.Background()
	frozen := time.Now()
	clock := func() time.Time { return frozen }
	a, b := &countingKV{KV: kv}, &countingKV{KV: kv}
	la, lb := New(a, clock), New(b, clock)
	limit := Limit{PerMinute: 60, Burst: 5}

	for i := range 3 {
		if d, err := la.Allow(ctx, "k", limit); err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v, %v", i+1, d, err)
		}
	}
	if n := a.gets.Load(); n != 1 {
		t.Errorf("3 requests read the state %d times, want once", n)
	}
	for range 2 {
		if d, err := lb.Allow(ctx, "k", limit); err != nil || !d.Allowed {
			t.Fatalf("other replica: %+v, %v", d, err)
		}
	}
	// The budget is spent; the first replica's remembered state says two
	// requests are left, the store says none.
	d, err := la.Allow(ctx, "k", limit)
	if err != nil || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("after the other replica spent the budget: %+v, %v; want refused", d, err)
	}
	if n := a.gets.Load(); n != 2 {
		t.Errorf("the stale state was read again %d times, want once", n-1)
	}
}
