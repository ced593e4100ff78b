package process

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	const base, limit = time.Second, 30 * time.Second
	tests := []struct {
		name     string
		attempt  int
		failure  failure
		min, max time.Duration
	}{
		{"first retry", 1, failure{}, 0, time.Second},
		{"third retry", 3, failure{}, 0, 4 * time.Second},
		{"capped", 20, failure{}, 0, limit},
		{"throttled waits at least half", 3, failure{throttled: true}, 2 * time.Second, 4 * time.Second},
		{"throttled and capped", 50, failure{throttled: true}, limit / 2, limit},
		{"Retry-After wins", 1, failure{throttled: true, retryAfter: 45 * time.Second}, 45 * time.Second, 45 * time.Second},
		{"Retry-After below the backoff", 5, failure{throttled: true, retryAfter: time.Second}, 8 * time.Second, 16 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lo, hi time.Duration = limit * 10, -1
			for range 2000 {
				d := retryDelay(tt.attempt, base, limit, &tt.failure)
				if d < tt.min || d > tt.max {
					t.Fatalf("delay %v outside [%v, %v]", d, tt.min, tt.max)
				}
				lo, hi = min(lo, d), max(hi, d)
			}
			// The delays are spread over the range, not pinned to one value.
			if spread := tt.max - tt.min; spread > 0 && hi-lo < spread/2 {
				t.Errorf("delays span only [%v, %v] of [%v, %v]", lo, hi, tt.min, tt.max)
			}
		})
	}
}
