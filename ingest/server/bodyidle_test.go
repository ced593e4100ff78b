package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// deadlineRecorder is a ResponseWriter that records read deadlines.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// TestBodyIdleDeadlines: every read of the body moves the deadline to the
// idle timeout, capped by the whole request's; after the body's end no
// deadline is set, because net/http's watch for a vanished client would
// take one passing as the client gone and cancel the request.
func TestBodyIdleDeadlines(t *testing.T) {
	tests := []struct {
		name       string
		readToEnd  bool
		readAfter  bool
		wantWrites int // deadlines set: one per read before the end, plus bodyRead's if the end was not reached
	}{
		{"body read to its end, then read again", true, true, 2},
		{"body not read to its end", false, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: Config{BodyIdleTimeout: time.Second, ReadTimeout: time.Minute}}
			rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789"))
			c := echo.New().NewContext(req, rec)
			c.Response().Writer = rec
			start := time.Now()
			bodyRead := s.watchBody(c)
			if tt.readToEnd {
				if _, err := io.ReadAll(req.Body); err != nil {
					t.Fatal(err)
				}
			} else if _, err := req.Body.Read(make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			if tt.readAfter {
				_, _ = req.Body.Read(make([]byte, 4))
			}
			bodyRead()
			if len(rec.deadlines) != tt.wantWrites {
				t.Fatalf("%d deadlines set (%v), want %d", len(rec.deadlines), rec.deadlines, tt.wantWrites)
			}
			if first := rec.deadlines[0].Sub(start); first < time.Second || first > 2*time.Second {
				t.Errorf("first deadline %v after the start, want the 1s idle timeout", first)
			}
			if !tt.readToEnd {
				if last := rec.deadlines[len(rec.deadlines)-1].Sub(start); last < time.Minute-time.Second || last > time.Minute+time.Second {
					t.Errorf("deadline after the form %v from the start, want the whole request's minute", last)
				}
			}
		})
	}
}
