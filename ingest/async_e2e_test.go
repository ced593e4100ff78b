package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/testenv"
)

// e2eWebhookSecret signs the development key's webhooks in these tests.
const e2eWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA="

// asyncPipeline is the pipeline with webhooks allowed to loopback and a
// fast retry schedule.
func asyncPipeline(t *testing.T) *pipeline {
	t.Helper()
	return startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{
		"SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
		"SIGFOLLOW_DEV_WEBHOOK_SECRET":    e2eWebhookSecret,
		"WEBHOOK_SCHEDULE":                "0s,100ms,100ms,100ms",
	}})
}

// hookReceiver is a client's webhook endpoint: it fails its first
// failFirst tries, then accepts.
type hookReceiver struct {
	URL       string
	failFirst int
	mu        sync.Mutex
	got       []hookTry
}

type hookTry struct {
	header http.Header
	body   []byte
	status int
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := http.StatusOK
		if len(h.got) < h.failFirst {
			status = http.StatusServiceUnavailable
		}
		h.got = append(h.got, hookTry{header: r.Header.Clone(), body: b, status: status})
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/sigfollow"
	return h
}

func (h *hookReceiver) tries() []hookTry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookTry(nil), h.got...)
}

// submitReq is one POST /media with the asynchronous options.
type submitReq struct {
	key         string // the API key; the development key if empty
	file        []byte
	name, mime  string
	callbackURL string
	fields      map[string]string
	header      map[string]string
}

type submitResp struct {
	status int
	header http.Header
	body   map[string]any
}

func (p *pipeline) submit(t *testing.T, r submitReq) submitResp {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("messaging_product", "whatsapp")
	if r.callbackURL != "" {
		_ = w.WriteField("callback_url", r.callbackURL)
	}
	for k, v := range r.fields {
		_ = w.WriteField(k, v)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, r.name))
	h.Set("Content-Type", r.mime)
	part, _ := w.CreatePart(h)
	_, _ = part.Write(r.file)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/"+e2ePhone+"/media", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if r.key == "" {
		r.key = e2eDevKey
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	return p.do(t, req)
}

func (p *pipeline) do(t *testing.T, req *http.Request) submitResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := submitResp{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Fatalf("response is not JSON (%d): %q", resp.StatusCode, raw)
	}
	return out
}

func (p *pipeline) jobStatus(t *testing.T, path string) submitResp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e2eDevKey)
	return p.do(t, req)
}

func TestAsyncUploadWithSignedWebhook(t *testing.T) {
	p := asyncPipeline(t)
	hook := newHookReceiver(t, 2) // fails its first two tries
	data := readFixture(t, "image.jpg")

	r := p.submit(t, submitReq{file: data, name: "a.jpg", mime: "image/jpeg", callbackURL: hook.URL})
	if r.status != http.StatusAccepted || r.body["status"] != "queued" || r.body["job_id"] == "" {
		t.Fatalf("got %d %v, want 202 queued with a job id", r.status, r.body)
	}
	jobID := r.body["job_id"].(string)
	statusURL := r.body["status_url"].(string)
	if statusURL != "/v1/"+e2ePhone+"/media/jobs/"+jobID || r.header.Get("Location") != statusURL {
		t.Errorf("status_url %q, Location %q", statusURL, r.header.Get("Location"))
	}

	testenv.Eventually(t, 30*time.Second, func() bool {
		st := p.jobStatus(t, statusURL)
		wh, _ := st.body["webhook"].(map[string]any)
		return st.body["status"] == "succeeded" && wh["state"] == "delivered"
	}, "the job never showed succeeded with its webhook delivered")

	st := p.jobStatus(t, statusURL)
	mediaID, _ := st.body["id"].(string)
	if m, ok := p.Graph.Lookup(mediaID); !ok || m.SHA256 != sha256Hex(data) {
		t.Fatalf("status id %q: Meta has %+v", mediaID, m)
	}
	for _, f := range []string{"created_at", "updated_at", "completed_at"} {
		if st.body[f] == nil {
			t.Errorf("status has no %s: %v", f, st.body)
		}
	}
	if wh := st.body["webhook"].(map[string]any); wh["attempts"] != float64(3) {
		t.Errorf("webhook state %v, want 3 attempts", wh)
	}

	tries := hook.tries()
	if len(tries) != 3 {
		t.Fatalf("receiver got %d tries, want 3", len(tries))
	}
	wh, err := standardwebhooks.NewWebhook(e2eWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range tries {
		if err := wh.Verify(tr.body, tr.header); err != nil {
			t.Errorf("try %d does not verify with the Standard Webhooks library: %v", i+1, err)
		}
		if tr.header.Get("webhook-id") != tries[0].header.Get("webhook-id") {
			t.Errorf("try %d has webhook-id %q, the first had %q", i+1, tr.header.Get("webhook-id"), tries[0].header.Get("webhook-id"))
		}
	}
	var ev struct {
		Type string
		Data map[string]any
	}
	if err := json.Unmarshal(tries[2].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "media.upload.succeeded" || ev.Data["job_id"] != jobID || ev.Data["id"] != mediaID || ev.Data["phone_number_id"] != e2ePhone {
		t.Errorf("event %+v", ev)
	}

	// Another phone number's status URL does not show the job.
	if other := p.jobStatus(t, "/v1/15550009999/media/jobs/"+jobID); other.status != http.StatusNotFound {
		t.Errorf("job under another phone number: %d %v, want 404", other.status, other.body)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

func TestAsyncFailureWebhookAndPolling(t *testing.T) {
	p := asyncPipeline(t)
	hook := newHookReceiver(t, 0)
	p.Graph.InjectFault(fakegraph.Fault{Kind: "190", Count: 1})
	r := p.submit(t, submitReq{file: []byte("fails at Meta\n"), name: "f.txt", mime: "text/plain", callbackURL: hook.URL})
	if r.status != http.StatusAccepted {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return len(hook.tries()) == 1 }, "no webhook for the failed job")
	var ev struct {
		Type string
		Data struct {
			Error struct{ Code string }
		}
	}
	if err := json.Unmarshal(hook.tries()[0].body, &ev); err != nil || ev.Type != "media.upload.failed" || ev.Data.Error.Code != "meta_auth_failed" {
		t.Errorf("event %+v (%v)", ev, err)
	}

	// Prefer: respond-async without a callback: poll for the result.
	poll := p.submit(t, submitReq{file: []byte("polled\n"), name: "p.txt", mime: "text/plain",
		header: map[string]string{"Prefer": "respond-async"}})
	if poll.status != http.StatusAccepted || poll.header.Get("Preference-Applied") != "respond-async" {
		t.Fatalf("Prefer: respond-async got %d %v (Preference-Applied %q)", poll.status, poll.body, poll.header.Get("Preference-Applied"))
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		return p.jobStatus(t, poll.body["status_url"].(string)).body["status"] == "succeeded"
	}, "the polled job never succeeded")
	if st := p.jobStatus(t, poll.body["status_url"].(string)); st.body["webhook"] != nil {
		t.Errorf("a job without callback_url shows a webhook: %v", st.body)
	}
}

func TestCallbackURLsRefusedAtSubmission(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1}) // no ranges allowed
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
		"http://[::1]/hook", "http://localhost/hook", "ftp://hooks.example.com/", "https://user:pw@hooks.example.com/",
	} {
		t.Run(u, func(t *testing.T) {
			r := p.submit(t, submitReq{file: []byte("x\n"), name: "x.txt", mime: "text/plain", callbackURL: u})
			e, _ := r.body["error"].(map[string]any)
			if r.status != http.StatusBadRequest || e["code"] != "invalid_callback_url" {
				t.Errorf("got %d %v, want 400 invalid_callback_url", r.status, r.body)
			}
		})
	}
	if n := p.staged(t); n != 0 {
		t.Errorf("%d objects staged for refused requests", n)
	}
	if n := p.Graph.Stats().Uploads; n != 0 {
		t.Errorf("Meta received %d uploads for refused requests", n)
	}
	// The same upload without the bad callback goes through.
	if r := p.submit(t, submitReq{file: []byte("x\n"), name: "x.txt", mime: "text/plain"}); r.status != http.StatusOK {
		t.Errorf("without callback_url: %d %v", r.status, r.body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	p := asyncPipeline(t)
	data := readFixture(t, "image.png")
	withKey := func(k string) map[string]string {
		return map[string]string{"Idempotency-Key": k, "Cache-Control": "no-cache"}
	}

	first := p.submit(t, submitReq{file: data, name: "i.png", mime: "image/png", header: withKey("order-42")})
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %v", first.status, first.body)
	}
	again := p.submit(t, submitReq{file: data, name: "i.png", mime: "image/png", header: withKey("order-42")})
	if again.status != http.StatusOK || again.body["id"] != first.body["id"] || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry: %d %v, want the original %v replayed", again.status, again.body, first.body)
	}
	if got, want := again.header.Get("Sigfollow-Job-Id"), first.header.Get("Sigfollow-Job-Id"); got != want {
		t.Errorf("retry answered job %s, the original was %s", got, want)
	}
	other := p.submit(t, submitReq{file: readFixture(t, "image.jpg"), name: "i.jpg", mime: "image/jpeg", header: withKey("order-42")})
	if e, _ := other.body["error"].(map[string]any); other.status != http.StatusUnprocessableEntity || e["code"] != "idempotency_key_reused" {
		t.Errorf("same key, other file: %d %v, want 422 idempotency_key_reused", other.status, other.body)
	}

	// Concurrent identical asynchronous requests make one job.
	var wg sync.WaitGroup
	jobs := make([]string, 4)
	for i := range jobs {
		wg.Go(func() {
			r := p.submit(t, submitReq{file: []byte("concurrent\n"), name: "c.txt", mime: "text/plain",
				header: map[string]string{"Idempotency-Key": "batch-7", "Prefer": "respond-async", "Cache-Control": "no-cache"}})
			if r.status == http.StatusAccepted {
				jobs[i], _ = r.body["job_id"].(string)
			} else if r.status != http.StatusConflict {
				t.Errorf("concurrent request: %d %v", r.status, r.body)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, j := range jobs {
		if j != "" {
			seen[j] = true
		}
	}
	if len(seen) != 1 {
		t.Errorf("concurrent identical requests made jobs %v, want exactly one", jobs)
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return p.Graph.Stats().Uploads == 2 }, "uploads never settled")
	if n := p.Graph.Stats().Uploads; n != 2 {
		t.Errorf("Meta saw %d uploads, want 2 (one per Idempotency-Key)", n)
	}
}

func TestMediaIDCache(t *testing.T) {
	p := asyncPipeline(t)
	data := readFixture(t, "document.pdf")
	up := func(header map[string]string, fields map[string]string) submitResp {
		return p.submit(t, submitReq{file: data, name: "d.pdf", mime: "application/pdf", header: header, fields: fields})
	}
	first := up(nil, nil)
	if first.status != http.StatusOK || first.header.Get("Sigfollow-Cache") != "miss" {
		t.Fatalf("first: %d %v cache %q", first.status, first.body, first.header.Get("Sigfollow-Cache"))
	}
	second := up(nil, nil)
	if second.status != http.StatusOK || second.body["id"] != first.body["id"] || second.header.Get("Sigfollow-Cache") != "hit" {
		t.Errorf("second: %d %v cache %q, want the same id from the cache", second.status, second.body, second.header.Get("Sigfollow-Cache"))
	}
	if n := p.Graph.Stats().Uploads; n != 1 {
		t.Errorf("Meta saw %d uploads of the same bytes, want 1", n)
	}

	// An asynchronous hit is answered at once, and still gets its webhook.
	hook := newHookReceiver(t, 0)
	async := p.submit(t, submitReq{file: data, name: "d.pdf", mime: "application/pdf", callbackURL: hook.URL})
	if async.status != http.StatusAccepted || async.body["status"] != "succeeded" || async.body["id"] != first.body["id"] {
		t.Errorf("async hit: %d %v", async.status, async.body)
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return len(hook.tries()) == 1 }, "no webhook for the cached job")

	// Opting out uploads again, by header or by form field.
	for _, o := range []struct{ header, fields map[string]string }{
		{header: map[string]string{"Cache-Control": "no-cache"}},
		{fields: map[string]string{"cache": "false"}},
	} {
		r := up(o.header, o.fields)
		if r.status != http.StatusOK || r.header.Get("Sigfollow-Cache") != "bypass" {
			t.Errorf("opt-out %v: %d %v cache %q", o, r.status, r.body, r.header.Get("Sigfollow-Cache"))
		}
	}
	if n := p.Graph.Stats().Uploads; n != 3 {
		t.Errorf("Meta saw %d uploads, want 3 (the first and two opt-outs)", n)
	}

	// A failure is not cached: the next upload of the same bytes goes to Meta.
	txt := []byte("failure is not cached\n")
	p.Graph.InjectFault(fakegraph.Fault{Kind: "190", Count: 1})
	if r := p.submit(t, submitReq{file: txt, name: "t.txt", mime: "text/plain"}); r.status != http.StatusBadGateway {
		t.Fatalf("fault: %d %v", r.status, r.body)
	}
	if r := p.submit(t, submitReq{file: txt, name: "t.txt", mime: "text/plain"}); r.status != http.StatusOK || r.header.Get("Sigfollow-Cache") != "miss" {
		t.Errorf("after a failure: %d %v cache %q, want a fresh upload", r.status, r.body, r.header.Get("Sigfollow-Cache"))
	}
}

// TestWebhookSignedWithTheKeysSecret creates a key with `ingest keys
// create`, which prints the key's webhook secret once, and checks that the
// key's webhooks verify with that secret.
func TestWebhookSignedWithTheKeysSecret(t *testing.T) {
	p := asyncPipeline(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"ingest", "keys", "create", "-name", "hooks", "-phone", e2ePhone}, mapEnv(p.env), &out, io.Discard); err != nil {
		t.Fatalf("keys create: %v\n%s", err, out.String())
	}
	var key, secret string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "key:"); ok {
			key = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "webhook secret:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	if key == "" || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("keys create printed %q; want the key and a whsec_ webhook secret", out.String())
	}
	hook := newHookReceiver(t, 0)

	r := p.submit(t, submitReq{key: key, file: []byte("signed with the key's secret\n"), name: "k.txt", mime: "text/plain", callbackURL: hook.URL})
	if r.status != http.StatusAccepted {
		t.Fatalf("got %d %v", r.status, r.body)
	}
	testenv.Eventually(t, 30*time.Second, func() bool { return len(hook.tries()) == 1 }, "no webhook arrived")
	tr := hook.tries()[0]
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(tr.body, tr.header); err != nil {
		t.Errorf("the webhook does not verify with the secret keys create printed: %v", err)
	}
	if dev, _ := standardwebhooks.NewWebhook(e2eWebhookSecret); dev.Verify(tr.body, tr.header) == nil {
		t.Error("the webhook verifies with the development secret too")
	}
}
