package process

import (
	"context"
	"testing"
	"time"
)

// TestPhoneLimiter checks the cap per phone number and the pause after Meta
// throttled one: the throttled number waits, the others do not.
func TestPhoneLimiter(t *testing.T) {
	const pause = 200 * time.Millisecond
	cases := []struct {
		name     string
		limit    int
		held     int    // slots of phone "1" held before the acquire
		paused   string // phone paused for `pause` before the acquire
		phone    string // the phone acquired
		wantWait bool   // the acquire must wait (and is cut off by its deadline)
		minWait  time.Duration
	}{
		{name: "free slot", limit: 2, held: 1, phone: "1"},
		{name: "cap reached", limit: 2, held: 2, phone: "1", wantWait: true},
		{name: "no cap", limit: 0, held: 5, phone: "1"},
		{name: "other number unaffected by the cap", limit: 1, held: 1, phone: "2"},
		{name: "throttled number waits out the pause", limit: 2, paused: "1", phone: "1", minWait: pause},
		{name: "other number unaffected by the pause", limit: 2, paused: "1", phone: "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newPhoneLimiter(tc.limit)
			for range tc.held {
				release, err := l.acquire(context.Background(), "1")
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			}
			if tc.paused != "" {
				l.pause(tc.paused, pause)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*pause)
			defer cancel()
			start := time.Now()
			release, err := l.acquire(ctx, tc.phone)
			took := time.Since(start)
			if tc.wantWait {
				if err == nil {
					release()
					t.Fatalf("acquired after %v; want it to wait for a free slot", took)
				}
				return
			}
			if err != nil {
				t.Fatalf("acquire: %v after %v", err, took)
			}
			release()
			if took < tc.minWait {
				t.Errorf("acquired after %v, want at least %v", took, tc.minWait)
			}
			if tc.minWait == 0 && took > pause/2 {
				t.Errorf("acquired after %v; want at once", took)
			}
		})
	}
}
