package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

// uploadResult is one upload's outcome as a client sees it.
type uploadResult struct {
	status int
	header http.Header
	body   map[string]any
	err    error
	took   time.Duration
}

// textFile returns a distinct small text file, so that no two uploads share
// bytes.
func textFile(tag string, i int) []byte {
	return fmt.Appendf(nil, "resilience %s %d %s\n", tag, i, job.NewID())
}

// stagedTextFile is a text file too large to travel in its job (over
// INLINE_MAX_BYTES's default): it is staged in the object store.
func stagedTextFile(tag string, i int) []byte {
	return bytes.Repeat(textFile(tag, i), (job.DefaultInlineMaxBytes+64<<10)/len(textFile(tag, i)))
}

// uploadAsync posts a text file in a goroutine and returns its outcome's
// channel.
func (p *pipeline) uploadAsync(data []byte) <-chan uploadResult {
	out := make(chan uploadResult, 1)
	go func() {
		start := time.Now()
		status, hdr, body, err := p.post(e2eDevKey, e2ePhone, data, "r.txt", "text/plain")
		out <- uploadResult{status: status, header: hdr, body: body, err: err, took: time.Since(start)}
	}()
	return out
}

func (p *pipeline) readyz(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(p.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// result reads a job's recorded result, if there is one yet.
func (p *pipeline) result(t *testing.T, id string) (job.Result, bool) {
	t.Helper()
	_, js := testenv.JetStream(t, p.natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, queue.ResultsBucket)
	if err != nil {
		return job.Result{}, false
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		return job.Result{}, false
	}
	var r job.Result
	return r, json.Unmarshal(e.Value(), &r) == nil && r.Status.Terminal()
}

// keptForReplay counts the dead-lettered jobs whose staged files stay for a
// replay.
func (p *pipeline) keptForReplay(t *testing.T) int {
	t.Helper()
	_, js := testenv.JetStream(t, p.natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	all, err := queue.NewDeadLetters(js, topo).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// uploadsAgain retries data until an upload succeeds once NATS is back,
// and checks that Meta got it.
func (p *pipeline) uploadsAgain(t *testing.T, data []byte) {
	t.Helper()
	var last uploadResult
	testenv.Eventually(t, 30*time.Second, func() bool {
		last = <-p.uploadAsync(data)
		return last.status == http.StatusOK
	}, "uploads do not succeed after NATS came back")
	wantMedia(t, p, last, data)
}

func wantMedia(t *testing.T, p *pipeline, r uploadResult, data []byte) {
	t.Helper()
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("upload: %d %v %v", r.status, r.body, r.err)
	}
	m, ok := p.Graph.Lookup(r.body["id"].(string))
	if !ok || m.SHA256 != sha256Hex(data) {
		t.Fatalf("Meta has %+v for %v", m, r.body)
	}
}

// TestWorkerKilledMidUploadAnotherFinishes kills a worker with SIGKILL while
// it streams to Meta: the job comes back after the ack wait, another worker
// finishes it, and the caller, still waiting, gets its media id.
func TestWorkerKilledMidUploadAnotherFinishes(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{"WORKER_ACK_WAIT": "2s"}})
	p.Graph.SetLatency(time.Minute) // the first attempt never finishes
	data := textFile("crash", 0)
	res := p.uploadAsync(data)
	testenv.Eventually(t, 20*time.Second, func() bool { return p.Graph.Stats().InFlight == 1 }, "the upload did not reach Meta")

	p.workers[0].Kill()
	p.Graph.SetLatency(0)
	p.startWorker(t, workerBin, 1)

	r := <-res
	wantMedia(t, p, r, data)
	if n := p.Graph.Stats().Uploads; n != 1 {
		t.Errorf("Meta stored %d uploads, want 1", n)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// TestNATSOutage stops NATS under a running pipeline: ingest answers 503
// with Retry-After at once and is not ready; after NATS comes back on the
// same port, ingest and the worker carry on without a restart, and a job
// accepted before the outage completes.
func TestNATSOutage(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{"SYNC_TIMEOUT": "1s", "WORKER_ACK_WAIT": "2s"}})

	// Accepted before the outage, still uploading when NATS goes away.
	p.Graph.SetLatency(2 * time.Second)
	before := textFile("nats", 0)
	r := <-p.uploadAsync(before)
	jobID, _ := r.body["error"].(map[string]any)["job_id"].(string)
	if r.status != http.StatusGatewayTimeout || jobID == "" {
		t.Fatalf("want 504 with a job id while Meta is slow, got %d %v", r.status, r.body)
	}
	p.Graph.SetLatency(0)

	p.NATS.Stop()
	// Once ingest has seen the connection drop; a request already past that
	// check waits at most PUBLISH_TIMEOUT (2s) for the publish.
	testenv.Eventually(t, 5*time.Second, func() bool { return p.readyz(t) == http.StatusServiceUnavailable },
		"/readyz still 200 during the outage")
	r = <-p.uploadAsync(textFile("nats", 1))
	e, _ := r.body["error"].(map[string]any)
	if r.status != http.StatusServiceUnavailable || e["code"] != "queue_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("during the outage: %d %v (Retry-After %q), want 503 queue_unavailable with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	t.Logf("503 during the NATS outage after %v", r.took)
	if r.took > 2*time.Second {
		t.Errorf("the 503 took %v, want under 2s", r.took)
	}

	p.NATS.Start()
	testenv.Eventually(t, 30*time.Second, func() bool { return p.readyz(t) == http.StatusOK }, "ingest not ready after NATS came back")
	testenv.Eventually(t, 60*time.Second, func() bool {
		res, ok := p.result(t, jobID)
		return ok && res.Status == job.StatusSucceeded
	}, "the job accepted before the outage did not complete")

	p.uploadsAgain(t, textFile("nats", 2))
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// TestNoJobQueuedBehindA503: NATS goes down while an upload's body is still
// arriving, after the request got past the connection check. The upload
// gets 503 (nothing was queued, retry), and when NATS comes back the job
// does not turn up after all: a publish is never held back for a
// reconnect and sent behind the client's back.
func TestNoJobQueuedBehindA503(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1})
	refused := textFile("behind a 503", 0)
	body, contentType := textForm(string(refused))
	half := len(body) / 2

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/"+e2ePhone+"/media", pr)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+e2eDevKey)
	req.Header.Set("Cache-Control", "no-cache")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
			close(answered)
			return
		}
		answered <- resp
	}()
	// The handler is reading the body once the first half is taken.
	if _, err := pw.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	p.NATS.Stop()
	testenv.Eventually(t, 5*time.Second, func() bool { return p.readyz(t) == http.StatusServiceUnavailable },
		"ingest did not see NATS go")
	_, _ = pw.Write(body[half:])
	_ = pw.Close()
	resp, ok := <-answered
	if !ok {
		return
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("an upload whose job could not be published: %d %s, want 503", resp.StatusCode, raw)
	}

	p.NATS.Start()
	testenv.Eventually(t, 30*time.Second, func() bool { return p.readyz(t) == http.StatusOK }, "ingest not ready after NATS came back")
	p.uploadsAgain(t, textFile("behind a 503", 1))
	_, js := testenv.JetStream(t, p.natsURL)
	testenv.Eventually(t, 10*time.Second, func() bool {
		s, err := js.Stream(t.Context(), job.Stream)
		if err != nil {
			return false
		}
		info, err := s.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	}, "jobs left in the stream")
	for _, m := range p.Graph.Media() {
		if m.SHA256 == sha256Hex(refused) {
			t.Fatalf("the upload answered 503 reached Meta after all (media id %s)", m.ID)
		}
	}
}

// TestMinIOOutage kills the object store: ingest answers 503 quickly to a
// file that must be staged and is not ready, while a small file, which
// travels in its job, still goes through; once the store is back on the
// same port and data, uploads go through without restarting anything.
func TestMinIOOutage(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1})
	first := stagedTextFile("minio", 0)
	wantMedia(t, p, <-p.uploadAsync(first), first)

	p.MinIO.Kill()
	small := textFile("minio", 1)
	wantMedia(t, p, <-p.uploadAsync(small), small)
	r := <-p.uploadAsync(stagedTextFile("minio", 1))
	e, _ := r.body["error"].(map[string]any)
	if r.status != http.StatusServiceUnavailable || e["code"] != "storage_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("during the outage: %d %v, want 503 storage_unavailable with Retry-After", r.status, r.body)
	}
	t.Logf("503 during the MinIO outage after %v", r.took)
	if r.took > 5*time.Second {
		t.Errorf("the 503 took %v, want it fast", r.took)
	}
	if code := p.readyz(t); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", code)
	}

	p.MinIO.Restart(t)
	testenv.Eventually(t, 30*time.Second, func() bool { return p.readyz(t) == http.StatusOK }, "ingest not ready after MinIO came back")
	after := stagedTextFile("minio", 2)
	wantMedia(t, p, <-p.uploadAsync(after), after)
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// TestIngestShutdownFinishesInFlightRequests stops ingest (as SIGTERM does)
// while an upload waits for Meta: the upload still gets its media id, and
// new connections are refused.
func TestIngestShutdownFinishesInFlightRequests(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1})
	p.Graph.SetLatency(time.Second)
	data := textFile("shutdown", 0)
	res := p.uploadAsync(data)
	testenv.Eventually(t, 20*time.Second, func() bool { return p.Graph.Stats().InFlight == 1 }, "the upload did not reach Meta")

	stopped := make(chan error, 1)
	go func() { stopped <- p.StopIngest() }()
	addr := strings.TrimPrefix(p.URL, "http://")
	testenv.Eventually(t, 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "ingest still accepts connections while shutting down")

	wantMedia(t, p, <-res, data)
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("ingest stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ingest did not stop after its in-flight request finished")
	}
}

// TestRollingRestartOfWorkersLosesNothing replaces every worker, one at a
// time with SIGTERM, while uploads keep coming: every upload succeeds.
func TestRollingRestartOfWorkersLosesNothing(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 2})
	p.Graph.SetLatency(100 * time.Millisecond)
	const uploads = 24
	results := make([]<-chan uploadResult, uploads)
	files := make([][]byte, uploads)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range uploads {
			files[i] = textFile("rolling", i)
			results[i] = p.uploadAsync(files[i])
			time.Sleep(50 * time.Millisecond) // pacing the load, not synchronisation
		}
	})
	for i := range 2 {
		testenv.Eventually(t, 20*time.Second, func() bool { return p.Graph.Stats().Uploads >= 4*(i+1) }, "no progress")
		if err := p.workers[i].Stop(40 * time.Second); err != nil {
			t.Errorf("worker-%d: %v", i+1, err)
		}
		p.startWorker(t, workerBin, 2+i)
	}
	wg.Wait()
	for i, ch := range results {
		wantMedia(t, p, <-ch, files[i])
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return p.staged(t) == 0 }, "staged objects left behind")
}

// TestThroughputGrowsWithWorkers runs the same burst against Meta with
// added latency on one worker, then on four: more workers, more throughput.
func TestThroughputGrowsWithWorkers(t *testing.T) {
	p := startPipeline(t, pipelineOptions{workers: 1, env: map[string]string{"WORKER_CONCURRENCY": "2", "WORKER_MAX_INFLIGHT_PER_PHONE": "0"}})
	p.Graph.SetLatency(500 * time.Millisecond)
	burst := func(tag string) time.Duration {
		t.Helper()
		const n = 16
		start := time.Now()
		chans := make([]<-chan uploadResult, n)
		files := make([][]byte, n)
		for i := range n {
			files[i] = textFile(tag, i)
			chans[i] = p.uploadAsync(files[i])
		}
		for i, ch := range chans {
			wantMedia(t, p, <-ch, files[i])
		}
		return time.Since(start)
	}
	one := burst("one")
	for i := range 3 {
		p.startWorker(t, workerBin, 1+i)
	}
	four := burst("four")
	t.Logf("16 uploads at 500 ms each: %v on 1 worker, %v on 4 workers (%.1fx)", one, four, float64(one)/float64(four))
	if float64(one)/float64(four) < 2 {
		t.Errorf("4 workers took %v for what 1 did in %v; want at least twice the throughput", four, one)
	}
	if st := p.Graph.Stats(); st.MaxInFlight < 5 {
		t.Errorf("at most %d uploads were in flight at Meta; 4 workers of 2 should reach 8", st.MaxInFlight)
	}
}
