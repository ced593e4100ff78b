package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/mediatype"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

const (
	phone  = "1234567890"
	bucket = "sigfollow-staging"
)

// stack is ingest's server wired to a real JetStream and a real MinIO.
type stack struct {
	URL     string
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    *queue.Topology
	store   *minio.Client
	keys    *apikey.Store
	devKey  string
	liveKey string // messages:send for phone only
}

type stackOptions struct {
	syncTimeout    time.Duration
	inlineMaxBytes int64
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if opts.syncTimeout == 0 {
		opts.syncTimeout = 20 * time.Second
	}
	url := testenv.NATS(t)
	nc, js := testenv.JetStream(t, url)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo, err := queue.Declare(ctx, js, queue.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	mio := testenv.MinIO(t)
	store := mio.Client(t, bucket)
	keys := apikey.NewStore(topo.Keys)
	s := &stack{nc: nc, js: js, topo: topo, store: store, keys: keys, devKey: "sflo_test_localdevelopmentkey"}
	s.liveKey = s.createKey(t, []string{apikey.ScopeMessagesSend}, []string{phone})

	srv, err := server.New(server.Config{Bucket: bucket, SyncTimeout: opts.syncTimeout, PublishTimeout: 2 * time.Second,
		InlineMaxBytes: opts.inlineMaxBytes}, server.Deps{
		Log: log, Auth: apikey.NewAuthenticator(keys, s.devKey), Receiver: upload.NewReceiver(t.TempDir(), 1<<20),
		Store: store, NATS: nc, JS: js, Results: topo.Results,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func (s *stack) createKey(t *testing.T, scopes, phones []string) string {
	t.Helper()
	plaintext, k, err := apikey.Generate("test", apikey.ModeLive, scopes, phones, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.keys.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return plaintext
}

// respond plays the worker's part of the contract: it takes each job,
// checks the staged object against the job, and answers with what answer
// returns (recording it in the results bucket like the worker does).
func (s *stack) respond(t *testing.T, answer func(job.Job) job.Result) *responder {
	t.Helper()
	ctx := context.Background()
	cons, err := s.js.CreateOrUpdateConsumer(ctx, job.Stream, jetstream.ConsumerConfig{Durable: "test-responder", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		j, err := job.Decode(m.Headers(), m.Data())
		if err != nil {
			t.Errorf("job message unreadable: %v", err)
			_ = m.Term()
			return
		}
		sum, size := s.objectSHA256(t, j)
		r.mu.Lock()
		r.jobs = append(r.jobs, seenJob{Job: j, Header: m.Headers(), StagedSHA256: sum, StagedSize: size})
		r.mu.Unlock()
		res := answer(j)
		res.JobID = j.ID
		b, _ := json.Marshal(res)
		if res.Status.Terminal() {
			if _, err := s.topo.Results.Put(ctx, j.ID, b); err != nil {
				t.Errorf("record result: %v", err)
			}
			_ = s.store.RemoveObject(ctx, j.Bucket, j.ObjectKey, minio.RemoveObjectOptions{})
		}
		if to := m.Headers().Get(job.HeaderReplyTo); to != "" && res.Status.Terminal() {
			_ = s.nc.Publish(to, b)
		}
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

type seenJob struct {
	job.Job
	Header       nats.Header
	StagedSHA256 string
	StagedSize   int64
}

type responder struct {
	mu   sync.Mutex
	jobs []seenJob
}

func (r *responder) seen() []seenJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenJob(nil), r.jobs...)
}

func (s *stack) objectSHA256(t *testing.T, j job.Job) (string, int64) {
	if j.Inline() {
		return "", -1
	}
	obj, err := s.store.GetObject(context.Background(), j.Bucket, j.ObjectKey, minio.GetObjectOptions{})
	if err != nil {
		return "", -1
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return "", -1
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// staged counts objects in the staging bucket.
func (s *stack) staged(t *testing.T) int {
	t.Helper()
	n := 0
	for o := range s.store.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

// queued counts jobs in the stream.
func (s *stack) queued(t *testing.T) uint64 {
	t.Helper()
	info, err := s.topo.Jobs.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// form describes a multipart request.
type form struct {
	fields    [][2]string // in order, before the file
	file      []byte
	fileName  string
	partType  string // the file part's Content-Type; "" sends none
	noFile    bool
	query     string
	key       string
	path      string
	rawBody   []byte
	rawCT     string
	afterFile [][2]string
	header    http.Header // extra request headers
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "mediatype", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f form) encode(t *testing.T) (io.Reader, string) {
	t.Helper()
	if f.rawBody != nil || f.rawCT != "" {
		return bytes.NewReader(f.rawBody), f.rawCT
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, kv := range f.fields {
		_ = w.WriteField(kv[0], kv[1])
	}
	if !f.noFile {
		h := textproto.MIMEHeader{}
		name := f.fileName
		if name == "" {
			name = "upload.bin"
		}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, name))
		if f.partType != "" {
			h.Set("Content-Type", f.partType)
		}
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Write(f.file)
	}
	for _, kv := range f.afterFile {
		_ = w.WriteField(kv[0], kv[1])
	}
	_ = w.Close()
	return &buf, w.FormDataContentType()
}

type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r response) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (s *stack) post(t *testing.T, f form) response {
	t.Helper()
	body, ct := f.encode(t)
	path := f.path
	if path == "" {
		path = "/v1/" + phone + "/media"
	}
	if f.query != "" {
		path += "?" + f.query
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if f.key != "" {
		req.Header.Set("Authorization", "Bearer "+f.key)
	}
	for k, v := range f.header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

func succeed(j job.Job) job.Result {
	return job.Result{Status: job.StatusSucceeded, MediaID: "9" + j.SHA256[:12], Attempts: 1, CompletedAt: time.Now()}
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestUploadSucceedsWithMetaID(t *testing.T) {
	s := newStack(t, stackOptions{})
	r := s.respond(t, succeed)
	jpg := fixture(t, "accept/image.jpg")

	cases := []struct {
		name string
		form form
	}{
		{"type on the file part", form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: jpg, partType: "image/jpeg", fileName: "cat.jpg"}},
		{"type field and generic part type", form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}, {"type", "image/jpeg"}}, file: jpg, partType: "application/octet-stream"}},
		{"messaging_product in the query string", form{key: s.liveKey, query: "messaging_product=whatsapp", file: jpg, partType: "image/jpeg"}},
		{"fields after the file", form{key: s.liveKey, file: jpg, afterFile: [][2]string{{"messaging_product", "whatsapp"}, {"type", "image/jpeg"}}}},
		{"dev key", form{key: s.devKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: jpg, partType: "image/jpeg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(r.seen())
			resp := s.post(t, tc.form)
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.Status, resp.Raw)
			}
			want := "9" + hexSHA(jpg)[:12]
			if resp.Raw != `{"id":"`+want+`"}`+"\n" {
				t.Fatalf("body %q, want exactly {\"id\":%q}", resp.Raw, want)
			}
			seen := r.seen()
			if len(seen) != before+1 {
				t.Fatalf("responder saw %d jobs, want %d", len(seen), before+1)
			}
			j := seen[len(seen)-1]
			if j.PhoneNumberID != phone || j.Type != "image/jpeg" || j.Size != int64(len(jpg)) || j.SHA256 != hexSHA(jpg) {
				t.Errorf("job %+v does not describe the upload", j.Job)
			}
			if j.StagedSHA256 != hexSHA(jpg) || j.StagedSize != int64(len(jpg)) {
				t.Errorf("staged object sha256 %s size %d; want the uploaded bytes", j.StagedSHA256, j.StagedSize)
			}
			if j.Header.Get("Nats-Msg-Id") != j.ID {
				t.Errorf("Nats-Msg-Id %q, want the job id %q", j.Header.Get("Nats-Msg-Id"), j.ID)
			}
			if resp.Header.Get("Sigfollow-Job-Id") != j.ID {
				t.Errorf("Sigfollow-Job-Id %q, want %q", resp.Header.Get("Sigfollow-Job-Id"), j.ID)
			}
		})
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.staged(t) == 0 }, "staged objects left behind")
}

// TestSmallFilesTravelInTheJob: a file of at most InlineMaxBytes is
// carried in the job message and never staged; a larger one is staged and
// the job names it.
func TestSmallFilesTravelInTheJob(t *testing.T) {
	const limit = 4096
	s := newStack(t, stackOptions{inlineMaxBytes: limit})
	r := s.respond(t, succeed)
	cases := []struct {
		name   string
		size   int
		inline bool
	}{
		{"one byte", 1, true},
		{"at the limit", limit, true},
		{"one byte over", limit + 1, false},
		{"far over", 300 << 10, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := bytes.Repeat([]byte(tc.name+"\n"), tc.size/len(tc.name+"\n")+1)[:tc.size]
			resp := s.post(t, form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: file, partType: "text/plain"})
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.Status, resp.Raw)
			}
			seen := r.seen()
			j := seen[len(seen)-1]
			if j.Inline() != tc.inline {
				t.Fatalf("job inline = %v, want %v (bucket %q, key %q)", j.Inline(), tc.inline, j.Bucket, j.ObjectKey)
			}
			if err := j.Validate(); err != nil {
				t.Errorf("published job is invalid: %v", err)
			}
			if tc.inline {
				if !bytes.Equal(j.Data, file) {
					t.Errorf("job carries %d bytes, not the %d uploaded", len(j.Data), len(file))
				}
				if j.StagedSize != -1 {
					t.Errorf("an inline job's file was also staged (%d bytes)", j.StagedSize)
				}
				return
			}
			if j.Data != nil || j.StagedSHA256 != hexSHA(file) || j.StagedSize != int64(len(file)) {
				t.Errorf("staged object sha256 %s size %d, job data %d bytes; want the upload staged, not carried",
					j.StagedSHA256, j.StagedSize, len(j.Data))
			}
		})
	}
}

// TestConcurrentSmallFilesKeepTheirBytes: a job carries its upload's
// pooled buffer until it is published; uploads at once never see each
// other's bytes.
func TestConcurrentSmallFilesKeepTheirBytes(t *testing.T) {
	s := newStack(t, stackOptions{inlineMaxBytes: 64 << 10})
	r := s.respond(t, succeed)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			file := bytes.Repeat(fmt.Appendf(nil, "upload %02d\n", i), 2000+i*97)
			resp := s.post(t, form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: file, partType: "text/plain"})
			if resp.Status != http.StatusOK {
				t.Errorf("upload %d: status %d, body %s", i, resp.Status, resp.Raw)
			}
		})
	}
	wg.Wait()
	seen := r.seen()
	if len(seen) != 32 {
		t.Fatalf("responder saw %d jobs, want 32", len(seen))
	}
	for _, j := range seen {
		if !j.Inline() || hexSHA(j.Data) != j.SHA256 || int64(len(j.Data)) != j.Size {
			t.Errorf("job %s carries %d bytes hashing to %s; it says %d bytes, %s", j.ID, len(j.Data), hexSHA(j.Data), j.Size, j.SHA256)
		}
	}
}

func TestRejectionsStageAndQueueNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	r := s.respond(t, succeed)
	noScope := s.createKey(t, []string{"messages:read"}, []string{phone})
	otherPhone := s.createKey(t, []string{apikey.ScopeMessagesSend}, []string{"555"})
	revoked := s.createKey(t, []string{apikey.ScopeMessagesSend}, []string{phone})
	id, _ := apikey.ParseID(revoked)
	if _, err := s.keys.Revoke(context.Background(), id, time.Now()); err != nil {
		t.Fatal(err)
	}
	wa := [][2]string{{"messaging_product", "whatsapp"}}
	jpg, png := fixture(t, "accept/image.jpg"), fixture(t, "accept/image.png")
	html, svg := fixture(t, "reject/page.html"), fixture(t, "reject/image.svg")
	bigImage := append(append([]byte{}, jpg...), make([]byte, 5*mediatype.MiB)...)
	bigSticker := append(append([]byte{}, fixture(t, "accept/sticker.webp")...), make([]byte, 500*mediatype.KiB)...)

	cases := []struct {
		name   string
		form   form
		status int
		code   string
	}{
		{"no key", form{fields: wa, file: jpg, partType: "image/jpeg"}, 401, "unauthorized"},
		{"unknown key", form{key: "sflo_live_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", fields: wa, file: jpg, partType: "image/jpeg"}, 401, "unauthorized"},
		{"garbage key", form{key: "hunter2", fields: wa, file: jpg, partType: "image/jpeg"}, 401, "unauthorized"},
		{"revoked key", form{key: revoked, fields: wa, file: jpg, partType: "image/jpeg"}, 401, "unauthorized"},
		{"key without messages:send", form{key: noScope, fields: wa, file: jpg, partType: "image/jpeg"}, 403, "forbidden"},
		{"key for another phone number", form{key: otherPhone, fields: wa, file: jpg, partType: "image/jpeg"}, 403, "forbidden"},
		{"phone number id not digits", form{key: s.liveKey, path: "/v1/abc123/media", fields: wa, file: jpg, partType: "image/jpeg"}, 400, "invalid_phone_number_id"},
		{"not multipart", form{key: s.liveKey, rawBody: []byte(`{"messaging_product":"whatsapp"}`), rawCT: "application/json"}, 400, upload.CodeNotMultipart},
		{"messaging_product missing", form{key: s.liveKey, file: jpg, partType: "image/jpeg"}, 400, upload.CodeMessagingProduct},
		{"messaging_product wrong", form{key: s.liveKey, fields: [][2]string{{"messaging_product", "sms"}}, file: jpg, partType: "image/jpeg"}, 400, upload.CodeMessagingProduct},
		{"no file", form{key: s.liveKey, fields: wa, noFile: true}, 400, upload.CodeMissingFile},
		{"octet-stream", form{key: s.liveKey, fields: wa, file: jpg, partType: "application/octet-stream"}, 400, "unsupported_media_type"},
		{"no type at all", form{key: s.liveKey, fields: wa, file: jpg}, 400, "unsupported_media_type"},
		{"gif", form{key: s.liveKey, fields: wa, file: fixture(t, "reject/image.gif"), partType: "image/gif"}, 400, "unsupported_media_type"},
		{"svg", form{key: s.liveKey, fields: wa, file: svg, partType: "image/svg+xml"}, 400, "unsupported_media_type"},
		{"msword", form{key: s.liveKey, fields: wa, file: fixture(t, "reject/document.doc"), partType: "application/msword"}, 400, "unsupported_media_type"},
		{"type field conflicts with part", form{key: s.liveKey, fields: append(wa, [2]string{"type", "image/png"}), file: jpg, partType: "image/jpeg"}, 400, upload.CodeTypeConflict},
		{"html disguised as jpeg", form{key: s.liveKey, fields: wa, file: html, partType: "image/jpeg"}, 400, "content_mismatch"},
		{"svg disguised as png", form{key: s.liveKey, fields: wa, file: svg, partType: "image/png"}, 400, "content_mismatch"},
		{"html disguised as text", form{key: s.liveKey, fields: wa, file: html, partType: "text/plain"}, 400, "content_mismatch"},
		{"jpeg declared png", form{key: s.liveKey, fields: wa, file: jpg, partType: "image/png"}, 400, "content_mismatch"},
		{"png declared jpeg", form{key: s.liveKey, fields: wa, file: png, partType: "image/jpeg"}, 400, "content_mismatch"},
		{"video declared image", form{key: s.liveKey, fields: wa, file: fixture(t, "accept/video.mp4"), partType: "image/jpeg"}, 400, "content_mismatch"},
		{"zip declared docx", form{key: s.liveKey, fields: wa, file: fixture(t, "reject/archive.zip"), partType: mediatype.DOCX}, 400, "content_mismatch"},
		{"doc declared xls", form{key: s.liveKey, fields: wa, file: fixture(t, "reject/document.doc"), partType: mediatype.XLS}, 400, "content_mismatch"},
		{"empty file", form{key: s.liveKey, fields: wa, file: []byte{}, partType: "text/plain"}, 400, "empty_file"},
		{"vorbis ogg", form{key: s.liveKey, fields: wa, file: fixture(t, "reject/audio.vorbis.ogg"), partType: "audio/ogg"}, 400, "unsupported_codec"},
		{"image over 5 MiB", form{key: s.liveKey, fields: wa, file: bigImage, partType: "image/jpeg"}, 413, "file_too_large"},
		{"sticker over 500 KiB", form{key: s.liveKey, fields: wa, file: bigSticker, partType: "image/webp"}, 413, "file_too_large"},
		{"second file part", form{key: s.liveKey, fields: wa, file: jpg, partType: "image/jpeg", afterFile: nil, rawBody: twoFiles(jpg), rawCT: "multipart/form-data; boundary=XYZ"}, 400, upload.CodeDuplicateFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.post(t, tc.form)
			if resp.Status != tc.status || resp.errCode() != tc.code {
				t.Fatalf("got %d %q, want %d %q; body %s", resp.Status, resp.errCode(), tc.status, tc.code, resp.Raw)
			}
			e := resp.Body["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" {
				t.Error("error has no message")
			}
			if rid, _ := e["request_id"].(string); rid == "" || rid != resp.Header.Get("X-Request-Id") {
				t.Errorf("request_id %q does not match X-Request-Id %q", rid, resp.Header.Get("X-Request-Id"))
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(resp.Raw, s.liveKey) {
				t.Error("the response echoes the API key")
			}
		})
	}
	if n := s.staged(t); n != 0 {
		t.Errorf("%d objects staged by rejected uploads", n)
	}
	if n := len(r.seen()); n != 0 {
		t.Errorf("%d jobs queued by rejected uploads", n)
	}
}

func twoFiles(b []byte) []byte {
	var buf bytes.Buffer
	buf.WriteString("--XYZ\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n")
	for range 2 {
		buf.WriteString("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
		buf.Write(b)
		buf.WriteString("\r\n")
	}
	buf.WriteString("--XYZ--\r\n")
	return buf.Bytes()
}

// TestSizeCap checks the seed's 16 MiB cap at its exact boundary.
func TestSizeCap(t *testing.T) {
	s := newStack(t, stackOptions{})
	r := s.respond(t, succeed)
	wa := [][2]string{{"messaging_product", "whatsapp"}}
	for _, tc := range []struct {
		size   int64
		status int
	}{
		{mediatype.MaxUploadSize, http.StatusOK},
		{mediatype.MaxUploadSize + 1, http.StatusRequestEntityTooLarge},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			text := bytes.Repeat([]byte("sixteen mebibytes of plain text\n"), int(tc.size/32)+1)[:tc.size]
			resp := s.post(t, form{key: s.liveKey, fields: wa, file: text, partType: "text/plain"})
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Raw)
			}
			if tc.status == http.StatusOK {
				j := r.seen()[len(r.seen())-1]
				if j.StagedSize != tc.size || j.StagedSHA256 != hexSHA(text) {
					t.Errorf("staged %d bytes (sha %s), want %d", j.StagedSize, j.StagedSHA256, tc.size)
				}
			} else if e := resp.Body["error"].(map[string]any); e["limit_bytes"] != float64(mediatype.MaxUploadSize) {
				t.Errorf("limit_bytes %v, want %d", e["limit_bytes"], mediatype.MaxUploadSize)
			}
		})
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.staged(t) == 0 }, "staged objects left behind")
}

func TestMetaFailuresAreMapped(t *testing.T) {
	s := newStack(t, stackOptions{})
	failures := map[string]*job.Error{
		"rejected.txt":    {Code: job.CodeMetaRejected, Message: "Meta rejected the upload", Meta: &job.MetaError{HTTPStatus: 400, Code: 131053, Message: "(#131053) Media upload error"}},
		"auth.txt":        {Code: job.CodeMetaAuth, Message: "Meta refused the access token", Meta: &job.MetaError{HTTPStatus: 401, Code: 190, Message: "Invalid OAuth access token"}},
		"unavailable.txt": {Code: job.CodeMetaUnavailable, Message: "Meta kept failing", Meta: &job.MetaError{HTTPStatus: 500, Code: 2}},
	}
	s.respond(t, func(j job.Job) job.Result {
		return job.Result{Status: job.StatusFailed, Error: failures[j.Filename], CompletedAt: time.Now()}
	})
	for name, status := range map[string]int{"rejected.txt": 400, "auth.txt": 502, "unavailable.txt": 502} {
		t.Run(name, func(t *testing.T) {
			resp := s.post(t, form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: []byte("hello\n"), fileName: name, partType: "text/plain"})
			if resp.Status != status || resp.errCode() != failures[name].Code {
				t.Fatalf("got %d %q, want %d %q: %s", resp.Status, resp.errCode(), status, failures[name].Code, resp.Raw)
			}
			meta := resp.Body["error"].(map[string]any)["meta"].(map[string]any)
			if meta["code"] != float64(failures[name].Meta.Code) {
				t.Errorf("meta code %v, want %d", meta["code"], failures[name].Meta.Code)
			}
			if resp.Body["error"].(map[string]any)["job_id"] == "" {
				t.Error("no job_id in a failed job's error")
			}
		})
	}
}

func TestSyncTimeoutAnswers504WithJobID(t *testing.T) {
	s := newStack(t, stackOptions{syncTimeout: 300 * time.Millisecond})
	// No worker: the job waits in the stream.
	resp := s.post(t, form{key: s.liveKey, fields: [][2]string{{"messaging_product", "whatsapp"}}, file: []byte("hello\n"), partType: "text/plain"})
	if resp.Status != http.StatusGatewayTimeout || resp.errCode() != server.CodeTimeout {
		t.Fatalf("got %d %q, want 504 %q: %s", resp.Status, resp.errCode(), server.CodeTimeout, resp.Raw)
	}
	jobID, _ := resp.Body["error"].(map[string]any)["job_id"].(string)
	if jobID == "" {
		t.Fatal("504 without job_id")
	}
	if s.queued(t) != 1 || s.staged(t) != 1 {
		t.Fatalf("after a timeout the job must stay queued and staged: %d queued, %d staged", s.queued(t), s.staged(t))
	}
	// A worker arriving later still completes it.
	r := s.respond(t, succeed)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(r.seen()) == 1 && s.staged(t) == 0 })
	if r.seen()[0].ID != jobID {
		t.Errorf("the worker took job %s, the 504 named %s", r.seen()[0].ID, jobID)
	}
}

func TestHealth(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(s.URL + "/v1/123/nothing")
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || b["error"]["code"] != server.CodeNotFound {
		t.Errorf("unknown route: %d %v", resp.StatusCode, b)
	}
}
