package server

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// watchBody makes a stalled body fail: before each read of the request
// body the connection's read deadline is moved to BodyIdleTimeout from now,
// never past the whole request's ReadTimeout. A client that trickles its
// body byte by byte keeps at most one connection busy for ReadTimeout; one
// that stops sending frees it after BodyIdleTimeout.
//
// Once the body's end has been read, net/http watches the connection for a
// client that goes away while the handler works, and clears the deadline
// for that: from then on no deadline is set, for one passing would cancel
// the request. The returned function, called once the form has been read,
// puts a body not read to its end back under the whole request's deadline
// (net/http discards the rest after the handler).
func (s *Server) watchBody(c echo.Context) (bodyRead func()) {
	if s.cfg.BodyIdleTimeout <= 0 {
		return func() {}
	}
	req := c.Request()
	b := &idleBody{r: req.Body, rc: http.NewResponseController(c.Response()), idle: s.cfg.BodyIdleTimeout}
	if s.cfg.ReadTimeout > 0 {
		b.end = time.Now().Add(s.cfg.ReadTimeout)
	}
	req.Body = b
	return func() {
		if !b.eof {
			_ = b.rc.SetReadDeadline(b.end)
		}
	}
}

// idleBody is a request body whose every read has a fresh deadline.
type idleBody struct {
	r    io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time // zero: no overall limit
	eof  bool      // the body's end has been read
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.r.Read(p)
	}
	deadline := time.Now().Add(b.idle)
	if !b.end.IsZero() && b.end.Before(deadline) {
		deadline = b.end
	}
	// Writers that do not support deadlines (test recorders) keep only the
	// server's own limits.
	_ = b.rc.SetReadDeadline(deadline)
	n, err := b.r.Read(p)
	b.eof = err == io.EOF
	return n, err
}

func (b *idleBody) Close() error { return b.r.Close() }
