package fakegraph_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/testenv"
)

const (
	token = "EAAG-test-token"
	phone = "106540352242922"
)

var client = &http.Client{Timeout: 30 * time.Second}

// formPart is one part of an upload form; a file part has a filename.
type formPart struct {
	name, filename, contentType string
	data                        []byte
}

func fieldPart(name, value string) formPart { return formPart{name: name, data: []byte(value)} }

// filePart is the file, typed on the part as curl's ;type= does.
func filePart(contentType string, data []byte) formPart {
	return formPart{name: "file", filename: "upload.bin", contentType: contentType, data: data}
}

var whatsapp = fieldPart("messaging_product", "whatsapp")

// form encodes parts as multipart/form-data.
func form(tb testing.TB, parts ...formPart) (string, []byte) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf("form-data; name=%q", p.name)
		if p.filename != "" {
			cd += fmt.Sprintf("; filename=%q", p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// call makes a request with a Bearer token (none if empty) and returns the
// status and body.
func call(tb testing.TB, method, url, bearer, contentType string, body io.Reader) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// upload posts parts to /v23.0/{phone}/media.
func upload(tb testing.TB, base, phoneID, bearer string, parts ...formPart) (int, []byte) {
	tb.Helper()
	ct, body := form(tb, parts...)
	return call(tb, http.MethodPost, base+"/v23.0/"+phoneID+"/media", bearer, ct, bytes.NewReader(body))
}

// uploadOK uploads a file and returns its media id.
func uploadOK(tb testing.TB, base string, parts ...formPart) string {
	tb.Helper()
	status, body := upload(tb, base, phone, token, parts...)
	if status != http.StatusOK {
		tb.Fatalf("upload: %d %s", status, body)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(body, &out); err != nil {
		tb.Fatalf("upload answer %s: %v", body, err)
	}
	return out.ID
}

// metaError is Meta's error object, as a client reads it.
type metaError struct {
	Error struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		FBTraceID string `json:"fbtrace_id"`
		ErrorData *struct {
			MessagingProduct string `json:"messaging_product"`
			Details          string `json:"details"`
		} `json:"error_data"`
	} `json:"error"`
}

// wantMetaError checks an answer against Meta's error shape.
func wantMetaError(tb testing.TB, status int, body []byte, wantStatus, wantCode int, msg string) metaError {
	tb.Helper()
	var e metaError
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("error body %s: %v", body, err)
	}
	if status != wantStatus || e.Error.Code != wantCode {
		tb.Fatalf("got %d code %d (%s), want %d code %d", status, e.Error.Code, body, wantStatus, wantCode)
	}
	if e.Error.Type == "" || e.Error.FBTraceID == "" || !strings.Contains(e.Error.Message, msg) {
		tb.Fatalf("error %s lacks a type or trace id, or a message with %q", body, msg)
	}
	return e
}

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "mediatype", "testdata", filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var mediaID = regexp.MustCompile(`^[1-9][0-9]{14,16}$`)

func TestUploadRetrieveDownloadDelete(t *testing.T) {
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	jpeg := fixture(t, "accept/image.jpg")
	id := uploadOK(t, base, whatsapp, fieldPart("type", "image/jpeg"), formPart{name: "file", filename: "cat.jpg", contentType: "image/jpeg", data: jpeg})
	if !mediaID.MatchString(id) {
		t.Fatalf("media id %q is not a 15-17 digit number", id)
	}

	status, body := call(t, http.MethodGet, base+"/v23.0/"+id, token, "", nil)
	var info struct {
		MessagingProduct string `json:"messaging_product"`
		URL              string `json:"url"`
		MIMEType         string `json:"mime_type"`
		SHA256           string `json:"sha256"`
		FileSize         int64  `json:"file_size"`
		ID               string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &info) != nil {
		t.Fatalf("retrieve: %d %s", status, body)
	}
	sum := sha256.Sum256(jpeg)
	if info.MessagingProduct != "whatsapp" || info.MIMEType != "image/jpeg" || info.SHA256 != hex.EncodeToString(sum[:]) ||
		info.FileSize != int64(len(jpeg)) || info.ID != id || !strings.HasPrefix(info.URL, base+"/") {
		t.Fatalf("retrieve = %+v", info)
	}

	t.Run("download with the token", func(t *testing.T) {
		status, got := call(t, http.MethodGet, info.URL, token, "", nil)
		if status != http.StatusOK || !bytes.Equal(got, jpeg) {
			t.Fatalf("download: %d, %d bytes; want 200 and the %d bytes uploaded", status, len(got), len(jpeg))
		}
	})
	t.Run("download without a token", func(t *testing.T) {
		status, body := call(t, http.MethodGet, info.URL, "", "", nil)
		wantMetaError(t, status, body, http.StatusUnauthorized, 190, "access token")
	})
	t.Run("download with another token", func(t *testing.T) {
		status, body := call(t, http.MethodGet, info.URL, "EAAG-other", "", nil)
		wantMetaError(t, status, body, http.StatusUnauthorized, 190, "access token")
	})
	t.Run("download with a forged link", func(t *testing.T) {
		forged := regexp.MustCompile(`hash=[^&]+`).ReplaceAllString(info.URL, "hash=forged")
		if status, _ := call(t, http.MethodGet, forged, token, "", nil); status != http.StatusNotFound {
			t.Fatalf("forged link: %d, want 404", status)
		}
	})
	t.Run("retrieve without a token", func(t *testing.T) {
		status, body := call(t, http.MethodGet, base+"/v23.0/"+id, "", "", nil)
		wantMetaError(t, status, body, http.StatusUnauthorized, 190, "")
	})
	t.Run("retrieve for the uploading phone number", func(t *testing.T) {
		if status, body := call(t, http.MethodGet, base+"/v23.0/"+id+"?phone_number_id="+phone, token, "", nil); status != http.StatusOK {
			t.Fatalf("retrieve: %d %s", status, body)
		}
	})
	t.Run("retrieve for another phone number", func(t *testing.T) {
		status, body := call(t, http.MethodGet, base+"/v23.0/"+id+"?phone_number_id=999", token, "", nil)
		wantMetaError(t, status, body, http.StatusBadRequest, 100, "does not exist")
	})
	t.Run("retrieve an unknown id", func(t *testing.T) {
		status, body := call(t, http.MethodGet, base+"/v23.0/1234567890123456", token, "", nil)
		wantMetaError(t, status, body, http.StatusBadRequest, 100, "Object with ID '1234567890123456' does not exist")
	})

	m, ok := srv.Lookup(id)
	if !ok || m.Filename != "cat.jpg" || m.PhoneNumberID != phone || m.MIMEType != "image/jpeg" || m.Deleted {
		t.Fatalf("Lookup = %+v, %v", m, ok)
	}

	status, body = call(t, http.MethodDelete, base+"/v23.0/"+id, token, "", nil)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"success":true}` {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body = call(t, http.MethodGet, base+"/v23.0/"+id, token, "", nil)
	wantMetaError(t, status, body, http.StatusBadRequest, 100, "does not exist")
	if status, _ := call(t, http.MethodGet, info.URL, token, "", nil); status != http.StatusNotFound {
		t.Errorf("download after delete: %d, want 404", status)
	}
	status, body = call(t, http.MethodDelete, base+"/v23.0/"+id, token, "", nil)
	wantMetaError(t, status, body, http.StatusBadRequest, 100, "does not exist")
	if m, _ := srv.Lookup(id); !m.Deleted {
		t.Error("Lookup does not show the deletion")
	}
}

func TestUploadRejections(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token, PhoneTokens: map[string]string{"200": "EAAG-phone-200"}})
	tests := []struct {
		name    string
		phone   string
		bearer  string
		parts   []formPart
		status  int // 200 when accepted
		code    int
		msg     string
		details string
	}{
		{name: "accepted", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 200},
		{name: "wrong token", bearer: "EAAG-wrong", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 401, code: 190, msg: "Invalid OAuth access token"},
		{name: "no token", bearer: "-", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 401, code: 190},
		{name: "phone's own token", phone: "200", bearer: "EAAG-phone-200", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 200},
		{name: "default token on a phone with its own", phone: "200", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 401, code: 190},
		{name: "phone token on another phone", bearer: "EAAG-phone-200", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 401, code: 190},
		{name: "no messaging_product", parts: []formPart{filePart("image/jpeg", jpeg)}, status: 400, code: 100, msg: "(#100) The parameter messaging_product is required."},
		{name: "other messaging_product", parts: []formPart{fieldPart("messaging_product", "instagram"), filePart("image/jpeg", jpeg)}, status: 400, code: 100, msg: `got "instagram"`},
		{name: "no file", parts: []formPart{whatsapp, fieldPart("type", "image/jpeg")}, status: 400, code: 100, msg: "The parameter file is required."},
		{name: "type outside Meta's list", parts: []formPart{whatsapp, filePart("image/gif", fixture(t, "reject/image.gif"))}, status: 400, code: 100, msg: "Received file of type 'image/gif'"},
		{name: "no type", parts: []formPart{whatsapp, filePart("", jpeg)}, status: 400, code: 100, msg: "Received file of type ''"},
		{name: "type field wins over the part's type", parts: []formPart{whatsapp, fieldPart("type", "image/png"), filePart("image/jpeg", jpeg)}, status: 400, code: 131053, details: "declared as image/png"},
		{name: "HTML as JPEG", parts: []formPart{whatsapp, filePart("image/jpeg", fixture(t, "reject/page.html"))}, status: 400, code: 131053, msg: "(#131053) Media upload error", details: "content is text/html"},
		{name: "Vorbis as Ogg", parts: []formPart{whatsapp, filePart("audio/ogg", fixture(t, "reject/audio.vorbis.ogg"))}, status: 400, code: 131053, details: "Opus"},
		{name: "empty file", parts: []formPart{whatsapp, filePart("application/pdf", nil)}, status: 400, code: 131053, details: "empty"},
		{name: "legacy Word, which Meta takes", parts: []formPart{whatsapp, filePart("application/msword", fixture(t, "reject/document.doc"))}, status: 200},
		{name: "legacy PowerPoint, which Meta takes", parts: []formPart{whatsapp, filePart("application/vnd.ms-powerpoint", fixture(t, "reject/document.ppt"))}, status: 200},
		{name: "phone number id not numeric", phone: "abc", parts: []formPart{whatsapp, filePart("image/jpeg", jpeg)}, status: 400, code: 100, msg: "Object with ID 'abc' does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phoneID, bearer := orDefault(tt.phone, phone), orDefault(tt.bearer, token)
			if bearer == "-" {
				bearer = ""
			}
			before := srv.Stats()
			status, body := upload(t, base, phoneID, bearer, tt.parts...)
			after := srv.Stats()
			if tt.status == http.StatusOK {
				if status != http.StatusOK || after.Uploads != before.Uploads+1 {
					t.Fatalf("got %d %s, want an accepted upload", status, body)
				}
				return
			}
			e := wantMetaError(t, status, body, tt.status, tt.code, tt.msg)
			if tt.details != "" && (e.Error.ErrorData == nil || !strings.Contains(e.Error.ErrorData.Details, tt.details) || e.Error.ErrorData.MessagingProduct != "whatsapp") {
				t.Errorf("error_data %+v does not explain %q", e.Error.ErrorData, tt.details)
			}
			if after.Rejected != before.Rejected+1 || after.Uploads != before.Uploads {
				t.Errorf("stats went from %+v to %+v for one rejection", before, after)
			}
		})
	}

	t.Run("messaging_product in the query string", func(t *testing.T) {
		ct, body := form(t, filePart("image/jpeg", jpeg))
		status, b := call(t, http.MethodPost, base+"/v23.0/"+phone+"/media?messaging_product=whatsapp", token, ct, bytes.NewReader(body))
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, b)
		}
	})
	t.Run("token in the query string", func(t *testing.T) {
		ct, body := form(t, whatsapp, filePart("image/jpeg", jpeg))
		status, b := call(t, http.MethodPost, base+"/v23.0/"+phone+"/media?access_token="+token, "", ct, bytes.NewReader(body))
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, b)
		}
	})
	t.Run("not multipart", func(t *testing.T) {
		status, b := call(t, http.MethodPost, base+"/v23.0/"+phone+"/media", token, "application/json", strings.NewReader(`{}`))
		wantMetaError(t, status, b, http.StatusBadRequest, 100, "file is required")
	})
	t.Run("unknown version", func(t *testing.T) {
		ct, body := form(t, whatsapp, filePart("image/jpeg", jpeg))
		status, b := call(t, http.MethodPost, base+"/latest/"+phone+"/media", token, ct, bytes.NewReader(body))
		wantMetaError(t, status, b, http.StatusBadRequest, 2500, "Unknown path components")
	})
}

// TestUploadSizeLimits: Meta's own per-kind limits, not SigFollow's 16 MiB
// cap.
func TestUploadSizeLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads files of up to 17 MiB")
	}
	_, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	tests := []struct {
		mime, fixture string
		size          int64
		ok            bool
		msg           string
	}{
		{"image/jpeg", "accept/image.jpg", 5 << 20, true, ""},
		{"image/jpeg", "accept/image.jpg", 5<<20 + 1, false, "at most 5242880 bytes for image"},
		{"image/webp", "accept/sticker.webp", 500 << 10, true, ""},
		{"image/webp", "accept/sticker.webp", 500<<10 + 1, false, "at most 512000 bytes for sticker"},
		{"video/mp4", "accept/video.mp4", 16<<20 + 1, false, "at most 16777216 bytes for video"},
		{"application/pdf", "accept/document.pdf", 17 << 20, true, ""}, // Meta takes documents up to 100 MB
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.mime, tt.size), func(t *testing.T) {
			data := padded(fixture(t, tt.fixture), tt.size)
			status, body := upload(t, base, phone, token, whatsapp, filePart(tt.mime, data))
			if tt.ok {
				if status != http.StatusOK {
					t.Fatalf("%d %s", status, body)
				}
				return
			}
			wantMetaError(t, status, body, http.StatusBadRequest, 100, tt.msg)
		})
	}
}

// padded returns head followed by zero bytes, size bytes in all.
func padded(head []byte, size int64) []byte {
	out := make([]byte, size)
	copy(out, head)
	return out
}

func TestFaults(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	tests := []struct {
		name   string
		fault  fakegraph.Fault
		status int
		code   int
		msg    string
	}{
		{"5xx", fakegraph.Fault{Kind: "5xx"}, 500, 2, "(#2) Service temporarily unavailable"},
		{"429", fakegraph.Fault{Kind: "429"}, 429, 80007, "(#80007) Rate limit hit"},
		{"190", fakegraph.Fault{Kind: "190"}, 401, 190, "Error validating access token"},
		{"5xx with its own message", fakegraph.Fault{Kind: "5xx", Message: "(#2) down for lunch"}, 500, 2, "down for lunch"},
		{"status and code", fakegraph.Fault{Status: 400, Code: 131016}, 400, 131016, "(#131016) Injected failure"},
		{"code alone", fakegraph.Fault{Code: 1}, 500, 1, "(#1) Injected failure"},
		{"code 0 with a status", fakegraph.Fault{Status: 401}, 401, 0, "(#0) Injected failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
			srv.InjectFault(tt.fault)
			status, body := upload(t, base, phone, token, whatsapp, filePart("image/jpeg", jpeg))
			wantMetaError(t, status, body, tt.status, tt.code, tt.msg)
			// Count 0 means once: the next upload goes through.
			uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
			if st := srv.Stats(); st.FaultsInjected != 1 || st.Rejected != 1 || st.Uploads != 1 || len(srv.Media()) != 1 {
				t.Errorf("stats %+v, %d media; want 1 fault, 1 rejection, 1 upload", st, len(srv.Media()))
			}
		})
	}

	t.Run("drop", func(t *testing.T) {
		srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
		srv.InjectFault(fakegraph.Fault{Kind: "drop"})
		ct, body := form(t, whatsapp, filePart("image/jpeg", jpeg))
		req, _ := http.NewRequest(http.MethodPost, base+"/v23.0/"+phone+"/media", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a dropped connection answered %d", resp.StatusCode)
		}
		uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
		if st := srv.Stats(); st.FaultsInjected != 1 || st.Uploads != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("latency", func(t *testing.T) {
		srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
		const delay = 300 * time.Millisecond
		srv.InjectFault(fakegraph.Fault{Latency: fakegraph.Duration(delay)})
		start := time.Now()
		uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
		if took := time.Since(start); took < delay {
			t.Errorf("a latency fault of %v answered after %v", delay, took)
		}
		if st := srv.Stats(); st.FaultsInjected != 1 || st.Rejected != 0 || st.Uploads != 1 {
			t.Errorf("stats %+v: a latency fault must delay, not fail", st)
		}
	})

	t.Run("latency on an error", func(t *testing.T) {
		srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
		const delay = 200 * time.Millisecond
		srv.InjectFault(fakegraph.Fault{Kind: "429", Latency: fakegraph.Duration(delay)})
		start := time.Now()
		status, body := upload(t, base, phone, token, whatsapp, filePart("image/jpeg", jpeg))
		wantMetaError(t, status, body, 429, 80007, "")
		if took := time.Since(start); took < delay {
			t.Errorf("answered after %v, want at least %v", took, delay)
		}
	})
}

func TestFaultCount(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})
	send := func(phoneID string) int {
		status, _ := upload(t, base, phoneID, token, whatsapp, filePart("image/jpeg", jpeg))
		return status
	}
	statuses := func(n int, phoneID string) []int {
		var out []int
		for range n {
			out = append(out, send(phoneID))
		}
		return out
	}

	t.Run("count n fails n uploads", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "5xx", Count: 3})
		if got := fmt.Sprint(statuses(4, phone)); got != "[500 500 500 200]" {
			t.Fatalf("statuses %s", got)
		}
	})
	t.Run("count -1 fails until cleared", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "429", Count: -1})
		if got := fmt.Sprint(statuses(5, phone)); got != "[429 429 429 429 429]" {
			t.Fatalf("statuses %s", got)
		}
		srv.ClearFaults()
		if got := send(phone); got != 200 {
			t.Fatalf("after ClearFaults: %d", got)
		}
	})
	t.Run("faults apply in order", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "429"})
		srv.InjectFault(fakegraph.Fault{Kind: "5xx", Count: 2})
		srv.InjectFault(fakegraph.Fault{Kind: "190"})
		if got := fmt.Sprint(statuses(5, phone)); got != "[429 500 500 401 200]" {
			t.Fatalf("statuses %s", got)
		}
	})
	t.Run("a fault for one phone number leaves the others alone", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "5xx", PhoneNumberID: "555"})
		if got := send(phone); got != 200 {
			t.Fatalf("another phone number: %d", got)
		}
		if got := send("555"); got != 500 {
			t.Fatalf("the faulty phone number: %d", got)
		}
	})
	t.Run("a rejected token does not use up a fault", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "5xx"})
		if status, _ := upload(t, base, phone, "EAAG-wrong", whatsapp, filePart("image/jpeg", jpeg)); status != 401 {
			t.Fatalf("wrong token: %d", status)
		}
		if got := send(phone); got != 500 {
			t.Fatalf("the fault was used up by an unauthorised request: %d", got)
		}
	})
}

// TestLatencyAndInFlight holds uploads open by not finishing their bodies,
// so that they are in flight together without any timing guess.
func TestLatencyAndInFlight(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})

	var wg sync.WaitGroup
	var writers []*io.PipeWriter
	for _, p := range []string{"1", "1", "2"} {
		ct, body := form(t, whatsapp, filePart("image/jpeg", jpeg))
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, _ := http.NewRequest(http.MethodPost, base+"/v23.0/"+p+"/media", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ct)
		wg.Go(func() {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		_, _ = pw.Write(body[:100])
		t.Cleanup(func() { _, _ = pw.Write(body[100:]); pw.Close() })
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return srv.Stats().InFlight == 3 }, "three uploads in flight")
	for _, pw := range writers {
		pw.CloseWithError(errors.New("client gave up"))
	}
	wg.Wait()
	testenv.Eventually(t, 10*time.Second, func() bool { return srv.Stats().InFlight == 0 }, "no upload in flight")
	st := srv.Stats()
	if st.MaxInFlight != 3 || st.MaxInFlightBy["1"] != 2 || st.MaxInFlightBy["2"] != 1 {
		t.Errorf("max in flight %d, by phone %v; want 3, {1:2 2:1}", st.MaxInFlight, st.MaxInFlightBy)
	}

	t.Run("SetLatency delays every upload", func(t *testing.T) {
		const delay = 250 * time.Millisecond
		srv.SetLatency(delay)
		for range 2 {
			start := time.Now()
			uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
			if took := time.Since(start); took < delay {
				t.Errorf("answered after %v, want at least %v", took, delay)
			}
		}
		srv.SetLatency(0)
	})
	t.Run("a client that gives up during the latency", func(t *testing.T) {
		srv.SetLatency(time.Minute)
		defer srv.SetLatency(0)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		ct, body := form(t, whatsapp, filePart("image/jpeg", jpeg))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v23.0/"+phone+"/media", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ct)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("answered %d despite a minute of latency", resp.StatusCode)
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return srv.Stats().InFlight == 0 }, "the abandoned upload is still in flight")
	})
}

func TestControlEndpoints(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	srv, base := testenv.FakeGraph(t, fakegraph.Config{Token: token})

	t.Run("faults as one object or a list", func(t *testing.T) {
		if status, b := call(t, http.MethodPost, base+"/_fake/faults", "", "application/json", strings.NewReader(`{"kind":"429"}`)); status != http.StatusNoContent {
			t.Fatalf("POST one fault: %d %s", status, b)
		}
		if status, b := call(t, http.MethodPost, base+"/_fake/faults", "", "application/json",
			strings.NewReader(`[{"status":503,"code":131000},{"kind":"190","phone_number_id":"`+phone+`"}]`)); status != http.StatusNoContent {
			t.Fatalf("POST a list: %d %s", status, b)
		}
		var got []string
		for range 4 {
			status, body := upload(t, base, phone, token, whatsapp, filePart("image/jpeg", jpeg))
			var e metaError
			_ = json.Unmarshal(body, &e)
			got = append(got, fmt.Sprintf("%d/%d", status, e.Error.Code))
		}
		if fmt.Sprint(got) != "[429/80007 503/131000 401/190 200/0]" {
			t.Fatalf("answers %v", got)
		}
	})
	t.Run("latency fault over HTTP", func(t *testing.T) {
		if status, _ := call(t, http.MethodPost, base+"/_fake/faults", "", "application/json", strings.NewReader(`{"latency":"150ms"}`)); status != http.StatusNoContent {
			t.Fatalf("POST: %d", status)
		}
		start := time.Now()
		uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
		if took := time.Since(start); took < 150*time.Millisecond {
			t.Errorf("answered after %v", took)
		}
	})
	t.Run("bad fault JSON", func(t *testing.T) {
		for _, body := range []string{`{"kind":`, `[{"latency":"soon"}]`, `"5xx"`} {
			if status, _ := call(t, http.MethodPost, base+"/_fake/faults", "", "application/json", strings.NewReader(body)); status != http.StatusBadRequest {
				t.Errorf("POST %s: %d, want 400", body, status)
			}
		}
	})
	t.Run("clear faults", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "5xx", Count: -1})
		if status, _ := call(t, http.MethodDelete, base+"/_fake/faults", "", "", nil); status != http.StatusNoContent {
			t.Fatalf("DELETE: %d", status)
		}
		uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
	})
	t.Run("latency", func(t *testing.T) {
		for _, body := range []string{`{"latency":"150ms"}`, `{"latency":150000000}`} {
			if status, _ := call(t, http.MethodPut, base+"/_fake/latency", "", "application/json", strings.NewReader(body)); status != http.StatusNoContent {
				t.Fatalf("PUT %s: %d", body, status)
			}
			start := time.Now()
			uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg))
			if took := time.Since(start); took < 150*time.Millisecond {
				t.Errorf("after PUT %s: answered after %v", body, took)
			}
		}
		if status, _ := call(t, http.MethodPut, base+"/_fake/latency", "", "application/json", strings.NewReader(`{"latency":"0s"}`)); status != http.StatusNoContent {
			t.Fatal("PUT 0s")
		}
		if status, _ := call(t, http.MethodPut, base+"/_fake/latency", "", "application/json", strings.NewReader(`{"latency":"forever"}`)); status != http.StatusBadRequest {
			t.Errorf("PUT forever: %d, want 400", status)
		}
	})
	t.Run("media and stats", func(t *testing.T) {
		status, body := call(t, http.MethodGet, base+"/_fake/media", "", "", nil)
		var media []fakegraph.Media
		if status != http.StatusOK || json.Unmarshal(body, &media) != nil {
			t.Fatalf("GET media: %d %s", status, body)
		}
		sum := sha256.Sum256(jpeg)
		if len(media) != 5 || media[0].SHA256 != hex.EncodeToString(sum[:]) || media[0].FileSize != int64(len(jpeg)) || media[0].PhoneNumberID != phone {
			t.Fatalf("media %+v", media)
		}
		status, body = call(t, http.MethodGet, base+"/_fake/stats", "", "", nil)
		var st fakegraph.Stats
		if status != http.StatusOK || json.Unmarshal(body, &st) != nil {
			t.Fatalf("GET stats: %d %s", status, body)
		}
		if st.Uploads != 5 || st.Rejected != 3 || st.FaultsInjected != 4 || st.BytesReceived != 5*int64(len(jpeg)) {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("reset", func(t *testing.T) {
		srv.InjectFault(fakegraph.Fault{Kind: "5xx", Count: -1})
		if status, _ := call(t, http.MethodPost, base+"/_fake/reset", "", "", nil); status != http.StatusNoContent {
			t.Fatalf("POST reset: %d", status)
		}
		if st := srv.Stats(); st.Uploads != 0 || st.Rejected != 0 || len(srv.Media()) != 0 {
			t.Fatalf("after reset: %+v, %d media", st, len(srv.Media()))
		}
		uploadOK(t, base, whatsapp, filePart("image/jpeg", jpeg)) // the fault went too
	})
}

// TestMaxStoredBytes: the oldest files' bytes go first; their metadata stays.
func TestMaxStoredBytes(t *testing.T) {
	_, base := testenv.FakeGraph(t, fakegraph.Config{Token: token, MaxStoredBytes: 1500})
	text := func(c string) []byte { return bytes.Repeat([]byte(c+" plain text\n"), 60) } // 780 bytes
	first := uploadOK(t, base, whatsapp, filePart("text/plain", text("first")))
	second := uploadOK(t, base, whatsapp, filePart("text/plain", text("second")))

	url := func(id string) string {
		_, body := call(t, http.MethodGet, base+"/v23.0/"+id, token, "", nil)
		var info struct{ URL string }
		if err := json.Unmarshal(body, &info); err != nil || info.URL == "" {
			t.Fatalf("retrieve %s: %s", id, body)
		}
		return info.URL
	}
	if status, _ := call(t, http.MethodGet, url(first), token, "", nil); status != http.StatusNotFound {
		t.Errorf("the oldest file's bytes are still served (%d)", status)
	}
	if status, got := call(t, http.MethodGet, url(second), token, "", nil); status != http.StatusOK || !bytes.Equal(got, text("second")) {
		t.Errorf("the newest file: %d, %d bytes", status, len(got))
	}
}

func TestConfig(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	_, base := testenv.FakeGraph(t, fakegraph.Config{Token: token, BaseURL: "https://graph.example.test/", Logger: logger})
	id := uploadOK(t, base, whatsapp, filePart("image/jpeg", fixture(t, "accept/image.jpg")))
	_, body := call(t, http.MethodGet, base+"/v23.0/"+id, token, "", nil)
	var info struct{ URL string }
	_ = json.Unmarshal(body, &info)
	if !strings.HasPrefix(info.URL, "https://graph.example.test/_media/"+id+"?") {
		t.Errorf("download link %q does not use BaseURL", info.URL)
	}
	line := logs.String()
	for _, want := range []string{"fakegraph request", "method=POST", "path=/v23.0/" + phone + "/media", "status=200", "method=GET", "path=/v23.0/" + id} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, token) {
		t.Error("the log shows the access token")
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(fakegraph.Duration(1500 * time.Millisecond))
	if err != nil || string(b) != `"1.5s"` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	for in, want := range map[string]time.Duration{`"250ms"`: 250 * time.Millisecond, `250000000`: 250 * time.Millisecond, `"0s"`: 0} {
		var d fakegraph.Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `true`, `"1.5"`} {
		var d fakegraph.Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted", in)
		}
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
