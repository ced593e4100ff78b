package graph_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/testenv"
	"github.com/sigfollow/media/worker/graph"
)

const (
	token = "EAAG-test-token-do-not-log"
	phone = "1234567890"
)

func newClient(tb testing.TB, base string) *graph.Client {
	tb.Helper()
	c, err := graph.New(graph.Config{BaseURL: base, Version: "v23.0", Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// text returns n bytes of plain text, the kind the fake accepts as
// text/plain at any size up to Meta's document limit.
func text(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %07d: the quick brown fox jumps over the lazy dog\n", i)
	}
	return b.Bytes()[:n]
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../shared/mediatype/testdata/accept/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestUploadSucceeds(t *testing.T) {
	tests := []struct {
		name, mime, filename string
		data                 []byte
	}{
		{"jpeg image", "image/jpeg", "photo.jpg", readFixture(t, "image.jpg")},
		{"pdf document", "application/pdf", "report.pdf", readFixture(t, "document.pdf")},
		{"6 MiB text document", "text/plain", "notes.txt", text(6 << 20)},
		{"quoted file name", "text/plain", `a "quoted" name.txt`, text(100)},
	}
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	c := newClient(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := c.Upload(t.Context(), graph.UploadRequest{
				PhoneNumberID: phone, Token: token, Type: tt.mime, Filename: tt.filename,
				Size: int64(len(tt.data)), Body: bytes.NewReader(tt.data),
			})
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			m, ok := srv.Lookup(id)
			if !ok {
				t.Fatalf("media id %q not at the fake; it has %+v", id, srv.Media())
			}
			if m.SHA256 != sum(tt.data) || m.FileSize != int64(len(tt.data)) {
				t.Errorf("fake got %d bytes sha256 %s, sent %d bytes sha256 %s", m.FileSize, m.SHA256, len(tt.data), sum(tt.data))
			}
			if m.MIMEType != tt.mime || m.Filename != tt.filename || m.PhoneNumberID != phone {
				t.Errorf("fake recorded type %q filename %q phone %q", m.MIMEType, m.Filename, m.PhoneNumberID)
			}
		})
	}
}

// recorder wraps the fake to see the raw request as it arrives.
type recorder struct {
	next          http.Handler
	contentLength atomic.Int64
	chunked       atomic.Bool
	received      atomic.Int64
	lastAuth      atomic.Value
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.contentLength.Store(req.ContentLength)
	r.chunked.Store(len(req.TransferEncoding) > 0)
	r.lastAuth.Store(req.Header.Get("Authorization"))
	req.Body = countingBody{req.Body, &r.received}
	r.next.ServeHTTP(w, req)
}

func newRecorded(t *testing.T) (*fakegraph.Server, *recorder, string) {
	srv := fakegraph.New(fakegraph.Config{Token: token})
	rec := &recorder{next: srv}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	return srv, rec, ts.URL
}

func TestUploadSendsExactContentLength(t *testing.T) {
	_, rec, base := newRecorded(t)
	data := text(3<<20 + 17)
	_, err := newClient(t, base).Upload(t.Context(), graph.UploadRequest{
		PhoneNumberID: phone, Token: token, Type: "text/plain", Filename: "a.txt",
		Size: int64(len(data)), Body: bytes.NewReader(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.chunked.Load() {
		t.Error("request used chunked transfer encoding")
	}
	if cl, got := rec.contentLength.Load(), rec.received.Load(); cl != got || cl <= int64(len(data)) {
		t.Errorf("Content-Length %d, body %d bytes, file %d bytes", cl, got, len(data))
	}
	if got := rec.lastAuth.Load(); got != "Bearer "+token {
		t.Errorf("Authorization = %q", got)
	}
}

// TestUploadStreams checks the file goes out while it is still being
// produced: the fake receives the first chunk before the second exists.
func TestUploadStreams(t *testing.T) {
	srv, rec, base := newRecorded(t)
	data := text(4 << 20)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := newClient(t, base).Upload(context.Background(), graph.UploadRequest{
			PhoneNumberID: phone, Token: token, Type: "text/plain", Filename: "big.txt",
			Size: int64(len(data)), Body: pr,
		})
		done <- result{id, err}
	}()
	half := len(data) / 2
	if _, err := pw.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.received.Load() >= int64(half) },
		"the fake received %d bytes of the first %d before the rest was written", rec.received.Load(), half)
	if _, err := pw.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m, _ := srv.Lookup(r.id); m.SHA256 != sum(data) {
		t.Errorf("fake got sha256 %s, want %s", m.SHA256, sum(data))
	}
}

func TestUploadShortBodyFails(t *testing.T) {
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	data := text(1000)
	_, err := newClient(t, base).Upload(t.Context(), graph.UploadRequest{
		PhoneNumberID: phone, Token: token, Type: "text/plain", Filename: "a.txt",
		Size: int64(len(data)) + 10, Body: bytes.NewReader(data),
	})
	if err == nil {
		t.Fatal("a body shorter than its size was uploaded")
	}
	if n := len(srv.Media()); n != 0 {
		t.Errorf("fake stored %d uploads", n)
	}
}

func TestUploadFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name       string
		fault      *fakegraph.Fault
		token      string
		mime       string
		data       []byte
		kind       graph.Kind
		status     int
		code       int
		hasDetails bool
	}{
		{name: "5xx", fault: &fakegraph.Fault{Kind: "5xx"}, kind: graph.KindTransient, status: 500, code: 2},
		{name: "429 with 80007", fault: &fakegraph.Fault{Kind: "429"}, kind: graph.KindThrottled, status: 429, code: 80007},
		{name: "80007 on a 400", fault: &fakegraph.Fault{Status: 400, Code: 80007}, kind: graph.KindThrottled, status: 400, code: 80007},
		{name: "app rate limit 4", fault: &fakegraph.Fault{Status: 400, Code: 4}, kind: graph.KindThrottled, status: 400, code: 4},
		{name: "throughput 130429", fault: &fakegraph.Fault{Status: 400, Code: 130429}, kind: graph.KindThrottled, status: 400, code: 130429},
		{name: "unknown error 1", fault: &fakegraph.Fault{Status: 400, Code: 1}, kind: graph.KindTransient, status: 400, code: 1},
		{name: "temporary 131000", fault: &fakegraph.Fault{Status: 400, Code: 131000}, kind: graph.KindTransient, status: 400, code: 131000},
		{name: "temporary 131016", fault: &fakegraph.Fault{Status: 400, Code: 131016}, kind: graph.KindTransient, status: 400, code: 131016},
		{name: "503", fault: &fakegraph.Fault{Status: 503, Code: 100}, kind: graph.KindTransient, status: 503, code: 100},
		{name: "expired token 190", fault: &fakegraph.Fault{Kind: "190"}, kind: graph.KindAuth, status: 401, code: 190},
		{name: "auth failure 0", fault: &fakegraph.Fault{Status: 401, Code: 0}, kind: graph.KindAuth, status: 401, code: 0},
		{name: "permission 10", fault: &fakegraph.Fault{Status: 403, Code: 10}, kind: graph.KindAuth, status: 403, code: 10},
		{name: "permission 200", fault: &fakegraph.Fault{Status: 403, Code: 200}, kind: graph.KindAuth, status: 403, code: 200},
		{name: "permission 299", fault: &fakegraph.Fault{Status: 403, Code: 299}, kind: graph.KindAuth, status: 403, code: 299},
		{name: "invalid parameter 100", fault: &fakegraph.Fault{Status: 400, Code: 100}, kind: graph.KindRejected, status: 400, code: 100},
		{name: "dropped connection", fault: &fakegraph.Fault{Kind: "drop"}, kind: graph.KindTransient},
		{name: "wrong token", token: "not-the-token", kind: graph.KindAuth, status: 401, code: 190},
		{name: "content does not match type", mime: "image/png", kind: graph.KindRejected, status: 400, code: 131053, hasDetails: true},
		{name: "type Meta does not take", mime: "image/gif", kind: graph.KindRejected, status: 400, code: 100},
	}
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	c := newClient(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ClearFaults()
			if tt.fault != nil {
				srv.InjectFault(*tt.fault)
			}
			tok, mime, data := cmp(tt.token, token), cmp(tt.mime, "text/plain"), text(2048)
			before := len(srv.Media())
			_, err := c.Upload(t.Context(), graph.UploadRequest{
				PhoneNumberID: phone, Token: tok, Type: mime, Filename: "f",
				Size: int64(len(data)), Body: bytes.NewReader(data),
			})
			ge, ok := errors.AsType[*graph.Error](err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *graph.Error", err, err)
			}
			if ge.Kind != tt.kind || ge.HTTPStatus != tt.status || (tt.status != 0 && (!ge.HasCode || ge.Code != tt.code)) {
				t.Errorf("got kind %v, HTTP %d, code %d (has code %v); want %v, HTTP %d, code %d",
					ge.Kind, ge.HTTPStatus, ge.Code, ge.HasCode, tt.kind, tt.status, tt.code)
			}
			if want := tt.kind == graph.KindTransient || tt.kind == graph.KindThrottled; ge.Retryable() != want {
				t.Errorf("Retryable() = %v, want %v", ge.Retryable(), want)
			}
			if tt.status != 0 && (ge.Message == "" || ge.FBTraceID == "") {
				t.Errorf("Meta's message %q or fbtrace_id %q lost", ge.Message, ge.FBTraceID)
			}
			if tt.hasDetails && ge.Details == "" {
				t.Error("Meta's error_data.details lost")
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), tok) {
				t.Errorf("error shows the token: %v", err)
			}
			if after := len(srv.Media()); after != before {
				t.Errorf("a failed upload was stored at the fake")
			}
		})
	}
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TestRetryAfter checks Meta's Retry-After, in seconds or as a date, reaches
// the caller on 429 and 503 answers.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header string
		kind   graph.Kind
		min    time.Duration
		max    time.Duration
	}{
		{"429 in seconds", 429, "7", graph.KindThrottled, 7 * time.Second, 7 * time.Second},
		{"503 as a date", 503, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), graph.KindTransient, 80 * time.Second, 91 * time.Second},
		{"429 without header", 429, "", graph.KindThrottled, 0, 0},
		{"429 unreadable", 429, "soon", graph.KindThrottled, 0, 0},
		{"500 ignores it", 500, "7", graph.KindTransient, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, "<html>busy</html>")
			}))
			t.Cleanup(ts.Close)
			_, err := newClient(t, ts.URL).Upload(t.Context(), graph.UploadRequest{
				PhoneNumberID: phone, Token: token, Type: "text/plain", Size: 3, Body: strings.NewReader("abc"),
			})
			ge, ok := errors.AsType[*graph.Error](err)
			if !ok {
				t.Fatalf("error %v is not a *graph.Error", err)
			}
			if ge.Kind != tt.kind || ge.HasCode || ge.RetryAfter < tt.min || ge.RetryAfter > tt.max {
				t.Errorf("got kind %v, has code %v, retry after %v; want %v, no code, retry after in [%v, %v]",
					ge.Kind, ge.HasCode, ge.RetryAfter, tt.kind, tt.min, tt.max)
			}
		})
	}
}

func TestUploadStopsWithContext(t *testing.T) {
	arrived := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(arrived)
		<-r.Context().Done() // Meta never answers
	}))
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := newClient(t, ts.URL).Upload(ctx, graph.UploadRequest{
			PhoneNumberID: phone, Token: token, Type: "text/plain", Size: 3, Body: strings.NewReader("abc"),
		})
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, ok := errors.AsType[*graph.Error](err); ok {
		t.Error("a cancelled upload was classified as Meta's failure")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []graph.Config{
		{BaseURL: "graph.example", Version: "v23.0"},
		{BaseURL: "ftp://graph.example", Version: "v23.0"},
		{BaseURL: "https://graph.example", Version: "23"},
	} {
		if _, err := graph.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
