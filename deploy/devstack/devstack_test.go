package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/localstack"
	"github.com/sigfollow/media/shared/testenv"
)

const repoRoot = "../.."

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole lines", []string{"a\nb\n"}, "ingest | a\ningest | b\n"},
		{"line split across writes", []string{"hel", "lo\nwor", "ld\n"}, "ingest | hello\ningest | world\n"},
		{"carriage return dropped", []string{"a\r\n"}, "ingest | a\n"},
		{"last line without newline flushed", []string{"a\nb"}, "ingest | a\ningest | b\n"},
		{"empty line kept", []string{"\n"}, "ingest | \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := newConsole(&out, "ingest").source("ingest")
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			w.Flush()
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestPrefixesLineUp(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out, "ingest", "worker-10")
	_, _ = c.source("ingest").Write([]byte("x\n"))
	_, _ = c.source("worker-10").Write([]byte("y\n"))
	if want := "ingest    | x\nworker-10 | y\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestRunFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	exe, err := os.Executable() // stands in for binaries that exist
	if err != nil {
		t.Fatal(err)
	}
	ok := []string{"devstack", "-ingest", exe, "-worker", exe}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"ingest port taken", ok, map[string]string{"INGEST_ADDR": taken.Addr().String()},
			[]string{"ingest cannot listen on " + taken.Addr().String(), "set INGEST_ADDR"}},
		{"fake port taken", ok, map[string]string{"FAKEGRAPH_ADDR": taken.Addr().String()},
			[]string{"fake Graph API cannot listen", "set FAKEGRAPH_ADDR"}},
		{"NATS port taken", ok, map[string]string{"DEVSTACK_NATS_ADDR": taken.Addr().String()},
			[]string{"NATS cannot listen", "set DEVSTACK_NATS_ADDR"}},
		{"MinIO port taken", ok, map[string]string{"DEVSTACK_MINIO_ADDR": taken.Addr().String()},
			[]string{"MinIO cannot listen", "set DEVSTACK_MINIO_ADDR"}},
		{"missing worker binary", []string{"devstack", "-ingest", exe, "-worker", filepath.Join(t.TempDir(), "worker")}, nil,
			[]string{"worker binary (-worker flag"}},
		{"missing MinIO binary", ok, map[string]string{"SIGFOLLOW_MINIO_BIN": filepath.Join(t.TempDir(), "minio")},
			[]string{"MinIO server binary", "SIGFOLLOW_MINIO_BIN"}},
		{"no workers", ok, map[string]string{"DEVSTACK_WORKERS": "0"}, []string{"DEVSTACK_WORKERS must be at least 1"}},
		{"two parts on one port", ok, map[string]string{"DEVSTACK_NATS_ADDR": "127.0.0.1:4222", "INGEST_ADDR": "127.0.0.1:4222"}, []string{"DEVSTACK_NATS_ADDR and INGEST_ADDR both use port 4222"}},
		{"port zero", ok, map[string]string{"INGEST_ADDR": "127.0.0.1:0"}, []string{"INGEST_ADDR"}},
		{"bad Graph API URL", ok, map[string]string{"META_BASE_URL": "graph"}, []string{"META_BASE_URL"}},
		{"unknown command", []string{"devstack", "up"}, nil, []string{`unknown command "up"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				// Free ports, so that only the case's own fault is reported.
				"DEVSTACK_NATS_ADDR": freeAddr(t), "DEVSTACK_MINIO_ADDR": freeAddr(t),
				"FAKEGRAPH_ADDR": freeAddr(t), "INGEST_ADDR": freeAddr(t),
				"SIGFOLLOW_MINIO_BIN": exe, "DEVSTACK_DATA_DIR": t.TempDir(),
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout strings.Builder
			err := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, io.Discard)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("run printed %q before failing; nothing should have started", stdout.String())
			}
		})
	}
}

func TestEnvListsVariables(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"devstack", "env"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"SIGFOLLOW_DEV_API_KEY", "META_ACCESS_TOKEN", "DEVSTACK_DATA_DIR", "DEVSTACK_WORKERS", "INGEST_ADDR", "FAKEGRAPH_ADDR"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("devstack env does not list %s:\n%s", v, out.String())
		}
	}
}

// TestStackUploadReachesFakeGraph runs the whole stack with real ingest and
// worker binaries, uploads a file the way the banner says, checks the fake
// Graph API received it byte for byte, and checks that cancelling stops
// everything.
func TestStackUploadReachesFakeGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole pipeline")
	}
	minioBin := testenv.MinIOBinary(t)
	ingestBin, workerBin := buildPipeline(t)

	const devKey = "sflo_test_stacktest000_DevstackEndToEndTest000000000"
	addrs := map[string]string{
		"DEVSTACK_NATS_ADDR": freeAddr(t), "DEVSTACK_MINIO_ADDR": freeAddr(t),
		"FAKEGRAPH_ADDR": freeAddr(t), "INGEST_ADDR": freeAddr(t),
	}
	env := map[string]string{
		"SIGFOLLOW_DEV_API_KEY": devKey, "META_ACCESS_TOKEN": "meta-token-under-test",
		"DEVSTACK_DATA_DIR": t.TempDir(), "DEVSTACK_WORKERS": "2", "SIGFOLLOW_MINIO_BIN": minioBin,
	}
	for k, v := range addrs {
		env[k] = v
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	out := watchOutput(t, outR)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"devstack", "-ingest", ingestBin, "-worker", workerBin},
			func(k string) string { return env[k] }, outW, io.Discard)
		outW.Close()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})

	select {
	case <-out.ready:
	case err := <-done:
		stopped = true
		t.Fatalf("run returned before the pipeline was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("no ready banner within 3 minutes")
	}
	ingestURL, fakeURL := "http://"+addrs["INGEST_ADDR"], "http://"+addrs["FAKEGRAPH_ADDR"]
	for _, want := range []string{
		`curl -sS -X POST ` + ingestURL + `/v1/1234567890/media -H "Authorization: Bearer ` + devKey + `"`,
		"curl -sS " + fakeURL + "/_fake/media",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}

	data, err := os.ReadFile(filepath.Join(repoRoot, "shared/mediatype/testdata/accept/image.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	id := upload(t, ingestURL+"/v1/1234567890/media", devKey, data)
	sum := sha256.Sum256(data)
	if got := fakeMediaSHA256(t, fakeURL, id); got != hex.EncodeToString(sum[:]) {
		t.Errorf("fake Graph API holds media %s with sha256 %s, want %x", id, got, sum)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("run did not return within 2 minutes of cancel")
	}
	for name, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s %s still in use after stop: %v", name, addr, err)
			continue
		}
		ln.Close()
	}
	for _, p := range []string{"ingest", "worker-1", "worker-2"} {
		if !out.hasLine("devstack", "msg=stopped", "process="+p) {
			t.Errorf("no line saying %s stopped cleanly", p)
		}
	}
}

// upload posts data as a JPEG to url the way a client would and returns
// the media id from the 200 answer.
func upload(t *testing.T, url, key string, data []byte) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("messaging_product", "whatsapp"); err != nil {
		t.Fatal(err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="image.jpg"`)
	h.Set("Content-Type", "image/jpeg")
	part, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var got struct{ ID string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &got) != nil || got.ID == "" {
		t.Fatalf("upload answered %s %s, want 200 with an id", resp.Status, raw)
	}
	return got.ID
}

// fakeMediaSHA256 returns the sha256 the fake Graph API recorded for id.
func fakeMediaSHA256(t *testing.T, fakeURL, id string) string {
	t.Helper()
	resp, err := http.Get(fakeURL + "/_fake/media")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var media []struct{ ID, SHA256 string }
	if err := json.NewDecoder(resp.Body).Decode(&media); err != nil {
		t.Fatal(err)
	}
	for _, m := range media {
		if m.ID == id {
			return m.SHA256
		}
	}
	t.Fatalf("media id %s not at the fake Graph API (%d uploads there)", id, len(media))
	return ""
}

// output collects what run prints, line by line.
type output struct {
	mu    sync.Mutex
	lines []string
	ready chan struct{} // closed when the ready banner appears
}

// watchOutput reads r until it ends; the test logs it all if it fails.
func watchOutput(t *testing.T, r io.Reader) *output {
	t.Helper()
	o := &output{ready: make(chan struct{})}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		seen := false
		for sc.Scan() {
			o.mu.Lock()
			o.lines = append(o.lines, sc.Text())
			o.mu.Unlock()
			if !seen && strings.HasPrefix(sc.Text(), readyBanner) {
				seen = true
				close(o.ready)
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("devstack output:\n%s", o.String())
		}
	})
	return o
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// hasLine reports whether a line from source contains every one of parts.
func (o *output) hasLine(source string, parts ...string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
next:
	for _, l := range o.lines {
		if !strings.HasPrefix(l, source+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return true
	}
	return false
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := localstack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// buildPipeline builds the ingest and worker binaries into a temporary
// directory.
func buildPipeline(t *testing.T) (ingest, worker string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the pipeline with: %v", err)
	}
	dir := t.TempDir()
	for _, pkg := range []string{"ingest", "worker"} {
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(dir, pkg), "./"+pkg)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", pkg, err, out)
		}
	}
	return filepath.Join(dir, "ingest"), filepath.Join(dir, "worker")
}

func TestDefaultDevKeyLooksLikeATestKey(t *testing.T) {
	var cfg Config
	if err := envconfig.Parse(&cfg, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if _, ok := apikey.ParseID(cfg.DevAPIKey); !ok || !strings.HasPrefix(cfg.DevAPIKey, "sflo_test_") {
		t.Errorf("default SIGFOLLOW_DEV_API_KEY %q is not shaped like a sflo_test_ key", cfg.DevAPIKey)
	}
}
