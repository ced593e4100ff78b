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
// the next update (one compare-and-set for the lot), so a busy key costs
// one round trip per batch rather than one per request, and
// compare-and-set conflicts happen only between replicas. The limiter
// remembers the state it last read or wrote for each key and writes from
// it without reading again; another replica's write since makes the
// compare-and-set fail, and the state is read afresh.
type Limiter struct {
	kv  KV
	now func() time.Time

	mu      sync.Mutex
	pending map[string][]*waiter // requests waiting for their key's next update
	known   map[string]state     // each key's state as last read or written here
}

// state is a key's stored theoretical arrival time and its revision (0:
// not stored).
type state struct {
	tat      time.Time
	revision uint64
}

// maxKnown bounds the states a limiter remembers; past it, an arbitrary
// one is forgotten (and read again when its key comes back).
const maxKnown = 10000

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
	return &Limiter{kv: kv, now: now, pending: map[string][]*waiter{}, known: map[string]state{}}
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

// try is one decide-write round, from the remembered state if there is
// one and from a fresh read otherwise. conflict reports that another writer
// got there first. A remembered state that turns out stale is read again
// at once. Deciding from a stale state is safe: a key's arrival time only
// moves forward, so a request it allows is written with compare-and-set
// (and refused if stale), and a request it refuses is refused by the
// current state too.
func (l *Limiter) try(ctx context.Context, key string, batch []*waiter) ([]Decision, bool, error) {
	l.mu.Lock()
	st, remembered := l.known[key]
	l.mu.Unlock()
	for {
		if !remembered {
			var err error
			if st, err = l.read(ctx, key); err != nil {
				return nil, false, err
			}
		}
		now := l.now()
		tat := st.tat
		ds := make([]Decision, len(batch))
		for i, w := range batch {
			ds[i], tat = gcra(now, tat, w.limit)
		}
		if tat.Equal(st.tat) {
			l.remember(key, st)
			return ds, false, nil // nothing allowed: nothing to store
		}
		value := []byte(strconv.FormatInt(tat.UnixNano(), 10))
		var rev uint64
		var err error
		if st.revision == 0 {
			rev, err = l.kv.Create(ctx, key, value)
		} else {
			rev, err = l.kv.Update(ctx, key, value, st.revision)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || wrongLastSequence(err) {
			l.forget(key)
			if remembered {
				remembered = false
				continue
			}
			return nil, true, nil
		}
		if err != nil {
			l.forget(key)
			return nil, false, fmt.Errorf("ratelimit: write %s: %w", key, err)
		}
		l.remember(key, state{tat: tat, revision: rev})
		return ds, false, nil
	}
}

// read returns key's stored state.
func (l *Limiter) read(ctx context.Context, key string) (state, error) {
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return state{}, nil
	case err != nil:
		return state{}, fmt.Errorf("ratelimit: read %s: %w", key, err)
	}
	st := state{revision: e.Revision()}
	if ns, err := strconv.ParseInt(string(e.Value()), 10, 64); err == nil {
		st.tat = time.Unix(0, ns)
	}
	return st, nil
}

func (l *Limiter) remember(key string, st state) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.known[key]; !ok && len(l.known) >= maxKnown {
		for k := range l.known {
			delete(l.known, k)
			break
		}
	}
	l.known[key] = st
}

func (l *Limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.known, key)
}

// wrongLastSequence reports a compare-and-set refused because the key
// changed (or expired) since the revision it named.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
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
