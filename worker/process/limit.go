package process

import (
	"context"
	"sync"
	"time"
)

// phoneLimiter caps one process's uploads in flight to Meta per phone number
// id and holds a throttled number's uploads back until Meta's requested
// pause is over, so that one throttled number neither takes every slot nor
// gets hammered by the jobs already pulled for it.
type phoneLimiter struct {
	limit int // 0: no cap
	mu    sync.Mutex
	nums  map[string]*phoneSlots
}

type phoneSlots struct {
	sem   chan struct{}
	until time.Time // no new upload before this
	users int       // holders and waiters; the entry goes when it is 0
}

func newPhoneLimiter(limit int) *phoneLimiter {
	return &phoneLimiter{limit: limit, nums: map[string]*phoneSlots{}}
}

// acquire waits for a free slot for phone and for any pause on it to end.
// The returned function frees the slot.
func (l *phoneLimiter) acquire(ctx context.Context, phone string) (release func(), err error) {
	l.mu.Lock()
	s := l.slots(phone)
	s.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if s.users--; s.users == 0 && time.Now().After(s.until) {
			delete(l.nums, phone)
		}
		l.mu.Unlock()
	}

	if s.sem != nil {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	free := func() {
		if s.sem != nil {
			<-s.sem
		}
		done()
	}
	for {
		l.mu.Lock()
		wait := time.Until(s.until)
		l.mu.Unlock()
		if wait <= 0 {
			return free, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			free()
			return nil, ctx.Err()
		}
	}
}

// slots returns phone's entry, creating it. l.mu must be held.
func (l *phoneLimiter) slots(phone string) *phoneSlots {
	s := l.nums[phone]
	if s == nil {
		s = &phoneSlots{}
		if l.limit > 0 {
			s.sem = make(chan struct{}, l.limit)
		}
		l.nums[phone] = s
	}
	return s
}

// pause holds back new uploads for phone for d; a longer pause already in
// place stays. The entry outlives its users until the pause is over.
func (l *phoneLimiter) pause(phone string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.slots(phone)
	if until := time.Now().Add(d); until.After(s.until) {
		s.until = until
	}
	for p, other := range l.nums {
		if other.users == 0 && time.Now().After(other.until) {
			delete(l.nums, p)
		}
	}
}
