package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind is what a failed upload calls for. Every failure is classified once,
// when it happens, from the HTTP status and Meta's error code.
type Kind int

// The kinds of failure.
const (
	// KindRejected: Meta refused this upload (bad parameter, unsupported or
	// mismatched type, file too large, ...). Sending it again will not help.
	KindRejected Kind = iota
	// KindAuth: Meta refused the access token or its permissions for the
	// phone number (codes 0, 190, 10, 200-299). An operator must act.
	KindAuth
	// KindTransient: Meta or the network failed (HTTP 5xx, Meta codes 1, 2,
	// 131000, 131016, timeouts, dropped connections). Retry with backoff.
	KindTransient
	// KindThrottled: Meta is rate limiting (HTTP 429, Meta codes 4, 80007,
	// 130429). Retry later, no sooner than RetryAfter if it is set.
	KindThrottled
)

// String names the kind, as logs show it.
func (k Kind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindAuth:
		return "auth"
	case KindTransient:
		return "transient"
	case KindThrottled:
		return "throttled"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failed upload: Meta's error object when Meta answered with one,
// or the transport failure when it did not answer at all.
type Error struct {
	// Kind is the failure's classification.
	Kind Kind
	// HTTPStatus is the status Meta answered with; 0 if there was no answer.
	HTTPStatus int
	// HasCode reports whether the answer carried Meta's error object; Code 0
	// is a real Meta code (an authentication failure).
	HasCode bool
	// Code, Subcode, Type, Message, Details and FBTraceID are the fields of
	// Meta's error object. Without one, Message describes the failure.
	Code      int
	Subcode   int
	Type      string
	Message   string
	Details   string
	FBTraceID string
	// RetryAfter is the wait Meta asked for with Retry-After on a 429 or 503.
	RetryAfter time.Duration
	// Err is the underlying transport error, if any.
	Err error
}

// Error describes the failure with Meta's code, message, details and trace
// id; it never contains the access token.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: ")
	b.WriteString(e.Kind.String())
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	}
	if e.HasCode {
		fmt.Fprintf(&b, ", code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "/%d", e.Subcode)
		}
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Details != "" {
		b.WriteString(" (")
		b.WriteString(e.Details)
		b.WriteString(")")
	}
	if e.FBTraceID != "" {
		b.WriteString(" fbtrace_id=")
		b.WriteString(e.FBTraceID)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether another attempt may succeed.
func (e *Error) Retryable() bool { return e.Kind == KindTransient || e.Kind == KindThrottled }

// Meta's error codes that call for a retry.
var (
	throttleCodes  = map[int]bool{4: true, 80007: true, 130429: true}
	transientCodes = map[int]bool{1: true, 2: true, 131000: true, 131016: true}
)

func authCode(code int) bool {
	return code == 0 || code == 190 || code == 10 || (code >= 200 && code <= 299)
}

// classify decides a failure's Kind from the HTTP status and, if present,
// Meta's error code.
func classify(status int, code int, hasCode bool) Kind {
	switch {
	case status == http.StatusTooManyRequests || (hasCode && throttleCodes[code]):
		return KindThrottled
	case status >= 500 || (hasCode && transientCodes[code]):
		return KindTransient
	case hasCode && authCode(code):
		return KindAuth
	case !hasCode && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		return KindAuth
	}
	return KindRejected
}

// parseError turns a non-2xx answer into an *Error.
func parseError(resp *http.Response, raw []byte) *Error {
	var body struct {
		Error *struct {
			Message   string `json:"message"`
			Type      string `json:"type"`
			Code      *int   `json:"code"`
			Subcode   int    `json:"error_subcode"`
			FBTraceID string `json:"fbtrace_id"`
			ErrorData struct {
				Details string `json:"details"`
			} `json:"error_data"`
		} `json:"error"`
	}
	e := &Error{HTTPStatus: resp.StatusCode}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil {
		m := body.Error
		e.HasCode = m.Code != nil
		if m.Code != nil {
			e.Code = *m.Code
		}
		e.Subcode, e.Type, e.Message, e.Details, e.FBTraceID = m.Subcode, m.Type, m.Message, m.ErrorData.Details, m.FBTraceID
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
		if len(raw) > 0 {
			e.Message += ": " + snippet(raw)
		}
	}
	e.Kind = classify(resp.StatusCode, e.Code, e.HasCode)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// maxRetryAfter caps a Retry-After in seconds, against absurd values.
const maxRetryAfter = 24 * 60 * 60

// retryAfter reads a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(s, 0), maxRetryAfter)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter*time.Second)
	}
	return 0
}
