package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/testenv"
)

const (
	testToken = "EAAG-run-test-token"
	testPhone = "15550001111"
	bucket    = "sigfollow-staging"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// logBuffer collects the worker's log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// field returns the string field key of the first JSON log line whose msg
// is msg, or "".
func (b *logBuffer) field(msg, key string) string {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			s, _ := line[key].(string)
			return s
		}
	}
	return ""
}

func TestRunHandlesJobsUntilStopped(t *testing.T) {
	mio := testenv.MinIO(t)
	natsURL := testenv.NATS(t)
	fake, graphURL := testenv.FakeGraph(t, fakegraph.Config{Token: testToken})
	env := map[string]string{
		"NATS_URL": natsURL, "S3_ENDPOINT": mio.Endpoint, "S3_ACCESS_KEY": mio.AccessKey, "S3_SECRET_KEY": mio.SecretKey,
		"S3_BUCKET": bucket, "META_BASE_URL": graphURL, "META_ACCESS_TOKEN": testToken,
		"WORKER_METRICS_ADDR": "127.0.0.1:0", "WORKER_CONCURRENCY": "2", "LOG_LEVEL": "debug",
	}
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"worker"}, mapEnv(env), io.Discard, logs) }()

	var addr string
	testenv.Eventually(t, 60*time.Second, func() bool {
		addr = logs.field("serving health checks", "addr")
		return addr != ""
	}, "no health server in the logs:\n%s", logs)
	testenv.Eventually(t, 60*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "never ready:\n%s", logs)

	data, err := os.ReadFile("../shared/mediatype/testdata/accept/image.png")
	if err != nil {
		t.Fatal(err)
	}
	result := publishJob(t, natsURL, mio.Client(t, bucket), data)
	if result.Status != job.StatusSucceeded || result.Attempts != 1 {
		t.Fatalf("result %+v", result)
	}
	if m, ok := fake.Lookup(result.MediaID); !ok || m.SHA256 != hexSum(data) {
		t.Errorf("Meta holds %+v (found %v), want sha256 %s", m, ok, hexSum(data))
	}
	// The job is counted once acknowledged, just after the answer.
	var metrics bytes.Buffer // the last scrape, shown if the wait fails
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		metrics.Reset()
		_, _ = io.Copy(&metrics, resp.Body)
		for _, want := range []string{`sigfollow_worker_jobs_total{outcome="succeeded"} 1`, "sigfollow_queue_jobs_in_progress 0", "go_goroutines"} {
			if !strings.Contains(metrics.String(), want) {
				return false
			}
		}
		return true
	}, "/metrics lacks the job, the queue or the runtime:\n%s", &metrics)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context ending")
	}
	for _, secret := range []string{testToken, mio.SecretKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret is in the logs:\n%s", logs)
		}
	}
}

// publishJob stages data and publishes its job as ingest does, and returns
// the result the worker sends back.
func publishJob(t *testing.T, natsURL string, store *minio.Client, data []byte) job.Result {
	t.Helper()
	nc, js := testenv.JetStream(t, natsURL)
	j := job.Job{
		ID: job.NewID(), PhoneNumberID: testPhone, Bucket: bucket, Type: "image/png",
		Size: int64(len(data)), SHA256: hexSum(data), Filename: "pixel.png", CreatedAt: time.Now().UTC(),
	}
	j.ObjectKey = "staging/" + j.ID
	if _, err := store.PutObject(t.Context(), bucket, j.ObjectKey, bytes.NewReader(data), j.Size, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(job.Subject(j.PhoneNumberID))
	msg.Data, _ = json.Marshal(j)
	msg.Header.Set(jetstream.MsgIDHeader, j.ID)
	msg.Header.Set(job.HeaderReplyTo, inbox)
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	reply, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v", err)
	}
	var r job.Result
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRunRejectsBadConfig(t *testing.T) {
	base := map[string]string{"META_ACCESS_TOKEN": "t"}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no token at all", map[string]string{}, "META_ACCESS_TOKEN or META_PHONE_TOKENS"},
		{"phone token without phone", map[string]string{"META_PHONE_TOKENS": "abc:t"}, "META_PHONE_TOKENS"},
		{"phone token without token", map[string]string{"META_PHONE_TOKENS": "123:"}, "META_PHONE_TOKENS"},
		{"zero concurrency", map[string]string{"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"},
		{"backoff base above max", map[string]string{"WORKER_BACKOFF_BASE": "1m", "WORKER_BACKOFF_MAX": "1s"}, "WORKER_BACKOFF_BASE"},
		{"tiny ack wait", map[string]string{"WORKER_ACK_WAIT": "10ms"}, "WORKER_ACK_WAIT"},
		{"no deliveries", map[string]string{"WORKER_MAX_DELIVER": "0"}, "WORKER_MAX_DELIVER"},
		{"Meta URL without scheme", map[string]string{"META_BASE_URL": "graph.example"}, "META_BASE_URL"},
		{"unparsable duration", map[string]string{"WORKER_ACK_WAIT": "soon"}, `"soon"`},
		{"metrics address without port", map[string]string{"WORKER_METRICS_ADDR": "localhost"}, "WORKER_METRICS_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.name != "no token at all" {
				for k, v := range base {
					env[k] = v
				}
			}
			for k, v := range tt.env {
				env[k] = v
			}
			err := run(t.Context(), []string{"worker"}, mapEnv(env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run returned %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestRunEnvListsVariables(t *testing.T) {
	var out bytes.Buffer
	// No token set: listing the variables needs no valid configuration.
	if err := run(t.Context(), []string{"worker", "env"}, mapEnv(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"NATS_URL", "META_ACCESS_TOKEN", "META_PHONE_TOKENS", "WORKER_CONCURRENCY", "WORKER_ACK_WAIT",
		"WORKER_MAX_DELIVER", "WORKER_BACKOFF_BASE", "WORKER_BACKOFF_MAX", "WORKER_SHUTDOWN_TIMEOUT", "WORKER_METRICS_ADDR"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("`worker env` does not list %s:\n%s", name, out.String())
		}
	}
}

func TestLoggedConfigHidesCredentials(t *testing.T) {
	cfg := Config{
		NATSURL:         "nats://user:natspass@a:4222, nats://natstoken@b:4222,nats://c:4222",
		MetaAccessToken: "metatoken", MetaPhoneTokens: map[string]string{"1": "phonetoken"}, S3SecretKey: "s3secret",
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", envconfig.LogValue(cfg.logged()))
	for _, secret := range []string{"natspass", "natstoken", "metatoken", "phonetoken", "s3secret"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("%q is in the start-up line: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "nats://c:4222") {
		t.Errorf("server list lost: %s", buf.String())
	}
}
