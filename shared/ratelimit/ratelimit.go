package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limit is a sustained rate with a burst allowance.
type Limit struct {
	// PerMinute is the sustained number of requests per minute.
	PerMinute int
	// Burst is how many requests may arrive at once after a quiet spell.
	Burst int
}

// interval is the time one request costs.
func (l Limit) interval() time.Duration { return time.Minute / time.Duration(l.PerMinute) }

// Valid reports whether l can be enforced.
func (l Limit) Valid() bool {
	return l.PerMinute > 0 && l.PerMinute <= int(time.Minute/time.Millisecond) && l.Burst > 0
}

// Decision is the outcome of one request against a key's budget.
type Decision struct {
	// Allowed is false when the request is over the limit.
	Allowed bool
	// Limit is the burst size, the most requests that can be made at once.
	Limit int
	// Remaining is how many more requests could be made right now.
	Remaining int
	// RetryAfter is, when not allowed, how long until one request fits.
	RetryAfter time.Duration
	// Reset is how long until the full burst is available again.
	Reset time.Duration
}

// KV is the part of a jetstream.KeyValue the limiter uses.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// Limiter applies limits to keys. Within one process, the requests for one
// key that arrive while its state is being updated are decided together in
// the next update (one read and one compare-and-set for the lot), so a busy
// key costs one round trip per batch rather than one per request, and
// compare-and-set conflicts happen only between replicas.
type Limiter struct {
	kv  KV
	now func() time.Time

	mu      sync.Mutex
	pending map[string][]*waiter // requests waiting for their key's next update
}

// waiter is one request waiting for its decision.
type waiter struct {
	limit Limit
	done  chan outcome // buffered: the updater never blocks on a gone caller
}

type outcome struct {
	d   Decision
	err error
}

// Bounds of one batch's update.
const (
	// maxAttempts bounds compare-and-set retries under contention; between
	// attempts the updater waits a random moment of up to attempt ×
	// retryPause.
	maxAttempts = 10
	retryPause  = time.Millisecond
	// updateTimeout bounds one batch's update, whatever its callers'
	// deadlines.
	updateTimeout = 2 * time.Second
)

// New returns a limiter over kv (queue.Topology.RateLimits). now is the
// clock; nil means time.Now.
func New(kv KV, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{kv: kv, now: now, pending: map[string][]*waiter{}}
}

// Allow takes one request from key's budget under limit. An error means
// the shared state could not be read or written in time; the caller decides
// whether to fail open or closed.
func (l *Limiter) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	if !limit.Valid() {
		return Decision{}, fmt.Errorf("ratelimit: invalid limit %+v", limit)
	}
	w := &waiter{limit: limit, done: make(chan outcome, 1)}
	l.mu.Lock()
	queue, busy := l.pending[key]
	l.pending[key] = append(queue, w)
	l.mu.Unlock()
	if !busy {
		go l.updater(key)
	}
	select {
	case o := <-w.done:
		return o.d, o.err
	case <-ctx.Done():
		return Decision{}, fmt.Errorf("ratelimit: key %s: %w", key, ctx.Err())
	}
}

// updater decides key's waiting requests batch by batch until none is left.
// A key has at most one updater per process: its entry in pending exists
// exactly while it runs.
func (l *Limiter) updater(key string) {
	for {
		l.mu.Lock()
		batch := l.pending[key]
		if len(batch) == 0 {
			delete(l.pending, key)
			l.mu.Unlock()
			return
		}
		l.pending[key] = batch[:0:0]
		l.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), updateTimeout)
		ds, err := l.update(ctx, key, batch)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.done <- outcome{err: err}
			} else {
				w.done <- outcome{d: ds[i]}
			}
		}
	}
}

// update decides batch, in order, against key's shared state and stores the
// result with compare-and-set, retrying on conflict.
func (l *Limiter) update(ctx context.Context, key string, batch []*waiter) ([]Decision, error) {
	for attempt := 1; ; attempt++ {
		ds, conflict, err := l.try(ctx, key, batch)
		switch {
		case err != nil:
			return nil, err
		case !conflict:
			return ds, nil
		case attempt == maxAttempts:
			return nil, fmt.Errorf("ratelimit: key %s: still contended after %d attempts", key, maxAttempts)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ratelimit: key %s: %w", key, ctx.Err())
		case <-time.After(rand.N(time.Duration(attempt) * retryPause)):
		}
	}
}

// try is one read-decide-write round. conflict reports that another writer
// got there first.
func (l *Limiter) try(ctx context.Context, key string, batch []*waiter) ([]Decision, bool, error) {
	var (
		tat      time.Time
		revision uint64
	)
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, false, fmt.Errorf("ratelimit: read %s: %w", key, err)
	default:
		revision = e.Revision()
		ns, perr := strconv.ParseInt(string(e.Value()), 10, 64)
		if perr == nil {
			tat = time.Unix(0, ns)
		}
	}
	now := l.now()
	start := tat
	ds := make([]Decision, len(batch))
	for i, w := range batch {
		ds[i], tat = gcra(now, tat, w.limit)
	}
	if tat.Equal(start) {
		return ds, false, nil // nothing allowed: nothing to store
	}
	value := []byte(strconv.FormatInt(tat.UnixNano(), 10))
	if revision == 0 {
		_, err = l.kv.Create(ctx, key, value)
	} else {
		_, err = l.kv.Update(ctx, key, value, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: write %s: %w", key, err)
	}
	return ds, false, nil
}

// gcra decides one request arriving at now against the stored theoretical
// arrival time tat (zero if none), returning the decision and, if allowed,
// the new tat.
func gcra(now, tat time.Time, limit Limit) (Decision, time.Time) {
	t := limit.interval()
	window := t * time.Duration(limit.Burst) // the burst's worth of time
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(t)
	d := Decision{Limit: limit.Burst}
	if allowAt := next.Add(-window); now.Before(allowAt) {
		d.RetryAfter = allowAt.Sub(now)
		d.Reset = tat.Sub(now)
		return d, tat
	}
	d.Allowed = true
	d.Remaining = int((window - next.Sub(now)) / t)
	d.Reset = next.Sub(now)
	return d, next
}
