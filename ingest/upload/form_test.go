package upload_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/mediatype"
)

const boundary = "sigfollow-test-boundary"

// part is one part of a multipart form: data, or a stream read once.
type part struct {
	name, filename, contentType string
	data                        []byte
	stream                      io.Reader
}

func (p part) body() io.Reader {
	if p.stream != nil {
		return p.stream
	}
	return bytes.NewReader(p.data)
}

// field is a plain form field.
func field(name, value string) part {
	return part{name: name, data: []byte(value)}
}

// file is a file part with the given Content-Type ("" for none).
func file(filename, contentType string, data []byte) part {
	return part{name: "file", filename: filename, contentType: contentType, data: data}
}

// fileFrom is a file part streamed from r; it can be sent once.
func fileFrom(filename, contentType string, r io.Reader) part {
	return part{name: "file", filename: filename, contentType: contentType, stream: r}
}

// whatsapp is the messaging_product field every valid upload carries.
var whatsapp = field("messaging_product", "whatsapp")

// quoteEscaper escapes a header parameter the way multipart.Writer does.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

func (p part) header() textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	cd := fmt.Sprintf(`form-data; name="%s"`, quoteEscaper.Replace(p.name))
	if p.filename != "" {
		cd += fmt.Sprintf(`; filename="%s"`, quoteEscaper.Replace(p.filename))
	}
	h.Set("Content-Disposition", cd)
	if p.contentType != "" {
		h.Set("Content-Type", p.contentType)
	}
	return h
}

// writeForm writes parts as a multipart body with the test boundary.
func writeForm(w io.Writer, parts ...part) error {
	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	for _, p := range parts {
		pw, err := mw.CreatePart(p.header())
		if err != nil {
			return err
		}
		if _, err := io.Copy(pw, p.body()); err != nil {
			return err
		}
	}
	return mw.Close()
}

// formBytes returns parts as a multipart body held in memory.
func formBytes(tb testing.TB, parts ...part) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := writeForm(&buf, parts...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// streamRequest returns an upload request whose body is written as it is
// read, through a pipe, so that a big file is never held in memory, and
// the count of body bytes the receiver has read.
func streamRequest(tb testing.TB, query string, parts ...part) (*http.Request, *counter) {
	tb.Helper()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeForm(pw, parts...)) }()
	// A receiver that stops early leaves the writer blocked: unblock it.
	tb.Cleanup(func() { pr.CloseWithError(errors.New("test over")) })
	c := &counter{r: pr}
	return newRequest(query, c), c
}

// newRequest returns a POST to the media route with a multipart body.
func newRequest(query string, body io.Reader) *http.Request {
	target := "/v1/106540352242922/media"
	if query != "" {
		target += "?" + query
	}
	req := httptest.NewRequest(http.MethodPost, target, body)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	return req
}

// receive runs Receive; an upload it returns is closed when the test ends.
func receive(tb testing.TB, rc *upload.Receiver, req *http.Request) (*upload.Upload, error) {
	tb.Helper()
	u, err := rc.Receive(httptest.NewRecorder(), req)
	if (u == nil) == (err == nil) {
		tb.Fatalf("Receive returned upload %v and error %v: want exactly one", u, err)
	}
	if u != nil {
		tb.Cleanup(func() { _ = u.Close() })
	}
	return u, err
}

// wantCode asserts that err is an *upload.Error with code whose message
// contains msg, and returns it.
func wantCode(tb testing.TB, err error, code, msg string) *upload.Error {
	tb.Helper()
	var e *upload.Error
	if !errors.As(err, &e) {
		tb.Fatalf("got error %v (%T), want an *upload.Error with code %q", err, err, code)
	}
	if e.Code != code || e.Message == "" || !strings.Contains(e.Message, msg) {
		tb.Fatalf("got %q: %q, want %q with a message containing %q", e.Code, e.Message, code, msg)
	}
	return e
}

// wantReason asserts that err is a *mediatype.Error for reason whose
// message contains msg, and returns it.
func wantReason(tb testing.TB, err error, reason mediatype.Reason, msg string) *mediatype.Error {
	tb.Helper()
	var e *mediatype.Error
	if !errors.As(err, &e) {
		tb.Fatalf("got error %v (%T), want a *mediatype.Error with reason %q", err, err, reason)
	}
	if e.Reason != reason || !strings.Contains(e.Error(), msg) {
		tb.Fatalf("got %q: %q, want %q with a message containing %q", e.Reason, e.Error(), reason, msg)
	}
	return e
}

// fixture returns a file from the media rules' fixtures.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "mediatype", "testdata", filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// spooled counts this process's open files in dir: the receiver's spool
// files are unlinked at once, so they show only as open descriptors.
func spooled(tb testing.TB, dir string) int {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("cannot list open files: %v", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// newReceiver returns a receiver spooling to a fresh directory, keeping up
// to memory bytes in memory, and checks when the test ends that no spool
// file was left open.
func newReceiver(tb testing.TB, memory int) (*upload.Receiver, string) {
	tb.Helper()
	dir := tb.TempDir()
	tb.Cleanup(func() {
		if n := spooled(tb, dir); n != 0 {
			tb.Errorf("%d spool files still open after the test", n)
		}
	})
	return upload.NewReceiver(dir, memory), dir
}

// text returns an endless stream of plain text.
func text() io.Reader {
	return &repeat{s: []byte("SigFollow media gateway: plain text line.\n")}
}

type repeat struct {
	s   []byte
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	return len(p), nil
}

// sizedFile returns a file part of exactly size bytes: head, then text.
func sizedFile(filename, contentType string, head []byte, size int64) part {
	r := io.LimitReader(io.MultiReader(bytes.NewReader(head), text()), size)
	return fileFrom(filename, contentType, r)
}
