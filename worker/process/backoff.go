package process

import (
	"math/rand/v2"
	"time"
)

// retryDelay is the wait before the delivery after attempt: a ceiling that
// doubles from base with each attempt up to limit, with full jitter below it,
// at least half of it when Meta is throttling, and never less than Meta's
// Retry-After.
func retryDelay(attempt int, base, limit time.Duration, f *failure) time.Duration {
	ceiling := base
	for i := 1; i < attempt && ceiling < limit; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, limit)
	d := rand.N(ceiling + 1)
	if f.throttled {
		d = ceiling/2 + rand.N(ceiling-ceiling/2+1)
	}
	return max(d, f.retryAfter)
}
