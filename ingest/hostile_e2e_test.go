package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/shared/testenv"
)

const boundary = "hostileB0undary"

// rawPart is one multipart part as bytes on the wire.
func rawPart(disposition, contentType string, content []byte) string {
	s := "--" + boundary + "\r\nContent-Disposition: " + disposition + "\r\n"
	if contentType != "" {
		s += "Content-Type: " + contentType + "\r\n"
	}
	return s + "\r\n" + string(content) + "\r\n"
}

const (
	closeDelimiter = "--" + boundary + "--\r\n"
	whatsappField  = `form-data; name="messaging_product"`
)

// rawRequest is a POST /media request head for body, with extra header
// lines (each ending in \r\n); contentLength < 0 uses len(body).
func rawRequest(body string, contentLength int, extra string) string {
	if contentLength < 0 {
		contentLength = len(body)
	}
	return "POST /v1/" + e2ePhone + "/media HTTP/1.1\r\nHost: ingest\r\n" +
		"Authorization: Bearer " + e2eDevKey + "\r\n" +
		"Content-Type: multipart/form-data; boundary=" + boundary + "\r\n" +
		"Content-Length: " + strconv.Itoa(contentLength) + "\r\n" + extra + "\r\n" + body
}

// answer is what the server did with a raw request: a status and error code,
// or closed when it hung up without answering.
type answer struct {
	status int
	code   string
	closed bool
	after  time.Duration
}

// exchange writes raw to a new TCP connection to ingest, then (like a
// stalled client) sends nothing more and reads the answer.
func (p *pipeline) exchange(t *testing.T, raw string) answer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, raw); err != nil {
		return answer{closed: true, after: time.Since(start)}
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within 15s")
		}
		return answer{closed: true, after: time.Since(start)}
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return answer{status: resp.StatusCode, code: body.Error.Code, after: time.Since(start)}
}

// TestHostileInput sends what a broken or malicious client might, over raw
// TCP: each gets a clear 4xx (or, for a client too slow to finish, a closed
// connection) within the configured timeouts, nothing is staged, and the
// server keeps serving.
func TestHostileInput(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{
		"READ_HEADER_TIMEOUT": "1s", "BODY_IDLE_TIMEOUT": "1s",
	}})
	jpeg := readFixture(t, "image.jpg")
	file := rawPart(`form-data; name="file"; filename="a.jpg"`, "image/jpeg", jpeg)
	whole := rawPart(whatsappField, "", []byte("whatsapp")) + file + closeDelimiter
	var manyParts strings.Builder
	for i := range 40 {
		manyParts.WriteString(rawPart(fmt.Sprintf(`form-data; name="f%d"`, i), "", []byte("x")))
	}

	tests := []struct {
		name       string
		raw        string
		wantStatus int    // 0: the connection is closed without an answer
		wantCode   string // the error code, if answered
	}{
		{"headers sent too slowly", "POST /v1/" + e2ePhone + "/media HTTP/1.1\r\nHost: ingest\r\n", 0, ""},
		{"body stalls half way", rawRequest(whole[:len(whole)/2], len(whole), ""), 400, "malformed_multipart"},
		{"body truncated before the close delimiter", rawRequest(whole[:len(whole)-len(closeDelimiter)-100], -1, ""), 400, "malformed_multipart"},
		{"body ends after the file without a close delimiter", rawRequest(rawPart(whatsappField, "", []byte("whatsapp"))+file, -1, ""), 400, "malformed_multipart"},
		{"garbage instead of multipart", rawRequest(strings.Repeat("\x00\xff", 500), -1, ""), 400, "malformed_multipart"},
		{"more than 32 parts", rawRequest(manyParts.String()+file+closeDelimiter, -1, ""), 400, "too_many_parts"},
		{"a second file part", rawRequest(rawPart(whatsappField, "", []byte("whatsapp"))+file+file+closeDelimiter, -1, ""), 400, "duplicate_file"},
		{"a file in another part", rawRequest(rawPart(whatsappField, "", []byte("whatsapp"))+
			rawPart(`form-data; name="other"; filename="b.jpg"`, "image/jpeg", jpeg)+file+closeDelimiter, -1, ""), 400, "unexpected_file_part"},
		{"a 100 KiB header", rawRequest(whole, -1, "X-Padding: "+strings.Repeat("a", 100<<10)+"\r\n"), 431, ""},
		{"a field over 4 KiB", rawRequest(rawPart(`form-data; name="caption"`, "", []byte(strings.Repeat("a", 5<<10)))+whole, -1, ""), 400, "field_too_long"},
		{"a non-UTF-8 field", rawRequest(rawPart(`form-data; name="caption"`, "", []byte("caf\xe9"))+whole, -1, ""), 400, "malformed_multipart"},
		{"Content-Length larger than the cap", rawRequest(whole, 20<<20, ""), 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.exchange(t, tt.raw)
			switch {
			case tt.wantStatus == 0 && !got.closed:
				t.Fatalf("answered %d %s; want the connection closed", got.status, got.code)
			case tt.wantStatus != 0 && got.closed:
				t.Fatalf("connection closed after %v; want %d %s", got.after, tt.wantStatus, tt.wantCode)
			case got.status != tt.wantStatus || tt.wantCode != "" && got.code != tt.wantCode:
				t.Fatalf("answered %d %q; want %d %q", got.status, got.code, tt.wantStatus, tt.wantCode)
			}
			if got.after > 5*time.Second {
				t.Errorf("took %v; the 1s timeouts should have ended it sooner", got.after)
			}
			if n := p.staged(t); n != 0 {
				t.Errorf("%d objects left staged", n)
			}
		})
	}

	// Odd file names are not refused: the file reaches Meta under a safe
	// base name. Control characters in a part's header make the header
	// malformed: 400.
	names := []struct {
		name, sent string
		wantStatus int
	}{
		{"path", `../../etc/passwd.jpg`, 200},
		{"windows path", `C:\\Users\\x\\photo.jpg`, 200},
		{"tab", "pho\tto.jpg", 200},
		{"DEL", "ph\x7foto.jpg", 400},
		{"control characters", "ph\x01oto.jpg", 400},
		{"bidi override", "invoice\u202Egpj.exe", 200},
		{"not UTF-8", "caf\xe9\xff.jpg", 200},
		{"only dots", "..", 200},
	}
	for _, n := range names {
		t.Run("file name "+n.name, func(t *testing.T) {
			body := rawPart(whatsappField, "", []byte("whatsapp")) +
				rawPart(`form-data; name="file"; filename="`+n.sent+`"`, "image/jpeg", jpeg) + closeDelimiter
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, rawRequest(body, -1, ""))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ok struct {
				ID    string
				Error struct{ Code string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&ok)
			if resp.StatusCode != n.wantStatus {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, ok.Error.Code, n.wantStatus)
			}
			if n.wantStatus != 200 {
				if ok.Error.Code != "malformed_multipart" {
					t.Errorf("code %q, want malformed_multipart", ok.Error.Code)
				}
				return
			}
			m, found := p.Graph.Lookup(ok.ID)
			if !found {
				t.Fatalf("media %s not at Meta", ok.ID)
			}
			clean := utf8.ValidString(m.Filename) && m.Filename != "" && !strings.ContainsAny(m.Filename, `/\`) &&
				!strings.HasPrefix(m.Filename, ".") && strings.IndexFunc(m.Filename, func(r rune) bool {
				return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
			}) < 0
			if !clean {
				t.Errorf("Meta got the file name %q", m.Filename)
			}
		})
	}
	// The idle timeout covers the body only: an upload may wait for Meta
	// longer than BODY_IDLE_TIMEOUT once its body is in (a signed one is
	// read to its very end).
	printed := p.keysCreate(t, "-name", "slow", "-phone", e2ePhone, "-require-signature")
	body, contentType := textForm("waits for Meta\n")
	p.Graph.SetLatency(2500 * time.Millisecond)
	signature := server.Sign(printed["signing secret"], time.Now(), body)
	if status, code, _ := p.postSigned(t, printed["key"], signature, body, contentType); status != http.StatusOK {
		t.Errorf("upload waiting 2.5s for Meta with a 1s body idle timeout: %d %s", status, code)
	}
	p.Graph.SetLatency(0)

	// The worker deletes the staged files just after answering.
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}
