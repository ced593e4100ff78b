package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/ratelimit"
)

// rateLimitTimeout bounds the shared rate-limit check. Past it, or on any
// error reaching the state, the request goes through unchecked (fail open:
// an outage of the limiter must not become an outage of uploads); the
// sigfollow_ingest_rate_limit_errors_total counter and a warning record it.
const rateLimitTimeout = 250 * time.Millisecond

// rateLimit takes one request from the API key's budget, shared by every
// ingest replica, after authentication and before the body is read. Every
// checked response carries the RateLimit-* headers; an exhausted budget is
// 429 with Retry-After.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.limiter == nil {
			return next(c)
		}
		key := c.Get(keyContextKey).(*apikey.Key)
		limit := keyLimit(key, s.cfg.RateLimit)
		ctx, cancel := context.WithTimeout(c.Request().Context(), rateLimitTimeout)
		d, err := s.limiter.Allow(ctx, key.ID, limit)
		cancel()
		if err != nil {
			s.metrics.limitErrors.Inc()
			s.log.Warn("rate limit unavailable; request let through", "request_id", requestID(c), "key_id", key.ID, "err", err)
			return next(c)
		}
		setRateLimitHeaders(c.Response().Header(), d, limit)
		if !d.Allowed {
			s.metrics.rateLimited.Inc()
			return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, RetryAfter: seconds(d.RetryAfter),
				Message: fmt.Sprintf("this API key is over its rate limit of %d uploads per minute (bursts of %d); retry after %d s",
					limit.PerMinute, limit.Burst, seconds(d.RetryAfter))}
		}
		return next(c)
	}
}

// keyLimit is the key's own limit where it has one, else def.
func keyLimit(key *apikey.Key, def ratelimit.Limit) ratelimit.Limit {
	if key.RateLimitPerMinute > 0 {
		def.PerMinute = key.RateLimitPerMinute
	}
	if key.RateLimitBurst > 0 {
		def.Burst = key.RateLimitBurst
	}
	return def
}

// setRateLimitHeaders writes the IETF RateLimit header fields
// (draft-ietf-httpapi-ratelimit-headers): the burst is the quota, the
// window the time the whole burst takes to refill.
func setRateLimitHeaders(h http.Header, d ratelimit.Decision, l ratelimit.Limit) {
	window := time.Duration(l.Burst) * time.Minute / time.Duration(l.PerMinute)
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(seconds(d.Reset)))
	h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", l.Burst, seconds(window)))
}

// seconds rounds d up to whole seconds, at least 1 when d is positive.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}
