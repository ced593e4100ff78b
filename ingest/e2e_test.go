package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/localstack"
	"github.com/sigfollow/media/shared/testenv"
)

const (
	e2ePhone     = "15550001111"
	e2eDevKey    = "sflo_test_e2edevelopmentkey"
	e2eMetaToken = "e2e-meta-token"
)

// workerBin is the worker binary TestMain builds: the end-to-end tests run
// it as real, separate processes.
var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sigfollow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	if out, err := exec.Command("go", "build", "-o", workerBin, "../worker").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build worker: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// pipeline is the whole system on real servers: JetStream, MinIO, the fake
// Graph API, ingest (in this process) and worker processes.
type pipeline struct {
	URL     string
	Graph   *fakegraph.Server
	natsURL string
	store   *minio.Client
	env     map[string]string
	// NATS and MinIO can be stopped and started again on the same ports and
	// data; StopIngest stops ingest as SIGTERM does and returns its error.
	NATS       *testenv.RestartableNATS
	MinIO      testenv.MinIOServer
	StopIngest func() error
	workers    []*workerProcess
}

type pipelineOptions struct {
	workers int
	env     map[string]string // extra settings for ingest and workers
}

func startPipeline(t *testing.T, opts pipelineOptions) *pipeline {
	t.Helper()
	if opts.workers == 0 {
		opts.workers = 2
	}
	nats := testenv.NewRestartableNATS(t)
	natsURL := nats.URL
	mio := testenv.MinIO(t)
	graph, graphURL := testenv.FakeGraph(t, fakegraph.Config{Token: e2eMetaToken})
	env := map[string]string{
		"NATS_URL": natsURL, "S3_ENDPOINT": mio.Endpoint, "S3_ACCESS_KEY": mio.AccessKey, "S3_SECRET_KEY": mio.SecretKey,
		"S3_BUCKET": "sigfollow-staging", "INGEST_ADDR": "127.0.0.1:0", "SIGFOLLOW_DEV_API_KEY": e2eDevKey,
		"META_BASE_URL": graphURL, "META_ACCESS_TOKEN": e2eMetaToken, "WORKER_BACKOFF_BASE": "50ms", "WORKER_BACKOFF_MAX": "200ms",
		"LOG_LEVEL": "warn", "LOG_FORMAT": "text", "SYNC_TIMEOUT": "30s",
	}
	for k, v := range opts.env {
		env[k] = v
	}
	p := &pipeline{Graph: graph, natsURL: natsURL, env: env, store: mio.Client(t, "sigfollow-staging"), NATS: nats, MinIO: mio}

	ctx, cancel := context.WithCancel(context.Background())
	var cfg Config
	if err := envconfig.Parse(&cfg, mapEnv(env)); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, testLogWriter{t}, ready) }()
	p.StopIngest = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() {
		if err := p.StopIngest(); err != nil {
			t.Errorf("ingest stopped with %v", err)
		}
	})
	select {
	case addr := <-ready:
		p.URL = "http://" + addr
	case err := <-done:
		t.Fatalf("ingest did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("ingest did not start within 60s")
	}
	for i := range opts.workers {
		p.startWorker(t, workerBin, i)
	}
	return p
}

// workerProcess is one running worker binary.
type workerProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, once exited
}

// Kill stops the worker with SIGKILL, as a crash would, and waits for it.
func (w *workerProcess) Kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// Stop sends SIGTERM and waits up to limit for a graceful exit.
func (w *workerProcess) Stop(limit time.Duration) error {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		return w.err
	case <-time.After(limit):
		w.Kill()
		return fmt.Errorf("did not stop within %v of SIGTERM", limit)
	}
}

func (p *pipeline) startWorker(t *testing.T, bin string, i int) *workerProcess {
	t.Helper()
	cmd := exec.Command(bin)
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	// Its health endpoint tells when it pulls jobs.
	health, err := localstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, "WORKER_METRICS_ADDR="+health)
	out := &prefixWriter{t: t, prefix: fmt.Sprintf("worker-%d", i+1)}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { w.err = cmd.Wait(); close(w.exited) }()
	p.workers = append(p.workers, w)
	t.Cleanup(func() {
		select {
		case <-w.exited:
			return // stopped or killed by the test
		default:
		}
		if err := w.Stop(40 * time.Second); err != nil {
			t.Errorf("worker-%d: %v", i+1, err)
		}
	})
	testenv.Eventually(t, 60*time.Second, func() bool {
		select {
		case <-w.exited:
			t.Fatalf("worker-%d exited at start: %v", i+1, w.err)
		default:
		}
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "worker-%d not ready", i+1)
	return w
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// testLogWriter sends a component's log lines to the test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + " | " + line)
	}
	return len(p), nil
}

// upload posts one file the way the seed's curl example does.
func (p *pipeline) upload(t *testing.T, key, phone string, file []byte, name, mimeType string) (int, map[string]any) {
	t.Helper()
	status, _, body, err := p.post(key, phone, file, name, mimeType)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// post is upload for any goroutine: it returns what went wrong instead of
// failing the test, and the response's headers too.
func (p *pipeline) post(key, phone string, file []byte, name, mimeType string) (int, http.Header, map[string]any, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("messaging_product", "whatsapp")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", mimeType)
	part, _ := w.CreatePart(h)
	_, _ = part.Write(file)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/"+phone+"/media", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	// These tests check what reaches Meta, so every upload goes there; the
	// media-id cache is tested in async_e2e_test.go.
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("response is not JSON (%d): %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// staged counts what is left in the staging bucket.
func (p *pipeline) staged(t *testing.T) int {
	t.Helper()
	n := 0
	for o := range p.store.ListObjects(context.Background(), "sigfollow-staging", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "shared", "mediatype", "testdata", "accept", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryWhitelistedTypeReachesMetaIntact uploads a real file of every
// accepted type through the whole pipeline and checks what Meta received:
// once with the files carried in their jobs (they are all under
// INLINE_MAX_BYTES's default), once with every file staged in MinIO.
func TestEveryWhitelistedTypeReachesMetaIntact(t *testing.T) {
	for _, mode := range []struct{ name, inlineMax string }{{"in the job", strconv.Itoa(job.DefaultInlineMaxBytes)}, {"staged", "0"}} {
		t.Run(mode.name, func(t *testing.T) {
			everyTypeReachesMeta(t, startPipeline(t, pipelineOptions{env: map[string]string{"INLINE_MAX_BYTES": mode.inlineMax}}))
		})
	}
}

func everyTypeReachesMeta(t *testing.T, p *pipeline) {
	cases := []struct{ file, mime string }{
		{"image.jpg", "image/jpeg"},
		{"image.png", "image/png"},
		{"sticker.webp", "image/webp"},
		{"video.mp4", "video/mp4"},
		{"video.3gp", "video/3gpp"},
		{"audio.aac", "audio/aac"},
		{"audio.m4a", "audio/mp4"},
		{"audio.mp3", "audio/mpeg"},
		{"audio.amr", "audio/amr"},
		{"audio.opus.ogg", "audio/ogg"},
		{"document.pdf", "application/pdf"},
		{"document.txt", "text/plain"},
		{"document.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"document.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"document.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
		{"document.xls", "application/vnd.ms-excel"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data := readFixture(t, tc.file)
			status, body := p.upload(t, e2eDevKey, e2ePhone, data, tc.file, tc.mime)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, body)
			}
			id, _ := body["id"].(string)
			if len(body) != 1 || id == "" {
				t.Fatalf("body %v, want exactly {\"id\": ...}", body)
			}
			m, ok := p.Graph.Lookup(id)
			if !ok {
				t.Fatalf("media id %s unknown at the Graph API", id)
			}
			if m.SHA256 != sha256Hex(data) || m.FileSize != int64(len(data)) || m.MIMEType != tc.mime || m.PhoneNumberID != e2ePhone {
				t.Errorf("Meta received %+v; want sha256 %s, %d bytes, %s", m, sha256Hex(data), len(data), tc.mime)
			}
			if m.Filename != tc.file {
				t.Errorf("file name at Meta %q, want %q", m.Filename, tc.file)
			}
		})
	}
	if n := p.Graph.Stats().Uploads; n != len(cases) {
		t.Errorf("Meta saw %d uploads, want %d (one each)", n, len(cases))
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// TestCurlUpload drives the pipeline with curl, exactly as the API page's
// example does.
func TestCurlUpload(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	p := startPipeline(t, pipelineOptions{workers: 1})
	file := filepath.Join("..", "shared", "mediatype", "testdata", "accept", "image.jpg")
	out, err := exec.Command(curl, "-sS", "-X", "POST", p.URL+"/v1/"+e2ePhone+"/media",
		"-H", "Authorization: Bearer "+e2eDevKey,
		"-F", "messaging_product=whatsapp",
		"-F", "file=@"+file+";type=image/jpeg").Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	var body struct{ ID string }
	if err := json.Unmarshal(out, &body); err != nil || body.ID == "" {
		t.Fatalf("curl got %q", out)
	}
	m, ok := p.Graph.Lookup(body.ID)
	if !ok || m.SHA256 != sha256Hex(readFixture(t, "image.jpg")) {
		t.Fatalf("Meta has %+v for %s", m, body.ID)
	}
}

// TestMetaFailuresEndToEnd checks retries and Meta's errors as the caller
// sees them.
func TestMetaFailuresEndToEnd(t *testing.T) {
	// Every file is staged, so that the dead-lettered ones show their
	// staged files kept for a replay.
	p := startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{"WORKER_MAX_DELIVER": "3", "INLINE_MAX_BYTES": "0"}})
	txt := []byte("hello from the pipeline\n")

	t.Run("transient failures are retried", func(t *testing.T) {
		p.Graph.InjectFault(fakegraph.Fault{Kind: "5xx", Count: 1})
		p.Graph.InjectFault(fakegraph.Fault{Kind: "429", Count: 1})
		status, body := p.upload(t, e2eDevKey, e2ePhone, txt, "a.txt", "text/plain")
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, body)
		}
		if _, ok := p.Graph.Lookup(body["id"].(string)); !ok {
			t.Fatal("media id unknown at Meta")
		}
	})
	t.Run("an expired token is terminal", func(t *testing.T) {
		p.Graph.InjectFault(fakegraph.Fault{Kind: "190", Count: 1})
		before := p.Graph.Stats().Uploads
		status, body := p.upload(t, e2eDevKey, e2ePhone, txt, "b.txt", "text/plain")
		e, _ := body["error"].(map[string]any)
		meta, _ := e["meta"].(map[string]any)
		if status != http.StatusBadGateway || e["code"] != "meta_auth_failed" || meta["code"] != float64(190) {
			t.Fatalf("got %d %v", status, body)
		}
		if p.Graph.Stats().Uploads != before {
			t.Error("a rejected upload was stored")
		}
		if strings.Contains(fmt.Sprint(body), e2eMetaToken) {
			t.Error("the Meta token leaked into the response")
		}
	})
	t.Run("persistent failure ends as failed, not lost", func(t *testing.T) {
		p.Graph.InjectFault(fakegraph.Fault{Kind: "5xx", Count: -1})
		defer p.Graph.ClearFaults()
		status, body := p.upload(t, e2eDevKey, e2ePhone, txt, "c.txt", "text/plain")
		e, _ := body["error"].(map[string]any)
		if status != http.StatusBadGateway || e["code"] != "meta_unavailable" || e["job_id"] == "" {
			t.Fatalf("got %d %v", status, body)
		}
	})
	// The refused token and Meta's outage are dead-lettered, their staged
	// files kept for a replay; nothing else stays.
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 2 && p.keptForReplay(t) == 2 },
		"staged objects other than the dead-lettered jobs' left behind")
}

// TestKeysCLI creates, uses, lists and revokes a key with `ingest keys`.
func TestKeysCLI(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1})
	cli := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"ingest", "keys"}, args...), mapEnv(p.env), &out, io.Discard); err != nil {
			t.Fatalf("ingest keys %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	out := cli("create", "-name", "acme", "-phone", e2ePhone)
	var key, id string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "key:"); ok {
			key = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "key id:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(key, "sflo_live_") || id == "" {
		t.Fatalf("create printed %q", out)
	}
	txt := []byte("key test\n")
	if status, body := p.upload(t, key, e2ePhone, txt, "k.txt", "text/plain"); status != http.StatusOK {
		t.Fatalf("new key: %d %v", status, body)
	}
	if status, _ := p.upload(t, key, "999", txt, "k.txt", "text/plain"); status != http.StatusForbidden {
		t.Errorf("new key on another phone number: %d, want 403", status)
	}
	list := cli("list")
	if !strings.Contains(list, id) || !strings.Contains(list, "acme") || strings.Contains(list, key) {
		t.Errorf("list shows %q; want the id and name, never the key", list)
	}
	cli("revoke", id)
	if status, _ := p.upload(t, key, e2ePhone, txt, "k.txt", "text/plain"); status != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", status)
	}
	if !strings.Contains(cli("list"), "revoked") {
		t.Error("list does not show the key as revoked")
	}
}
