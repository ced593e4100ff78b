package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sigfollow/media/shared/localstack"
)

// The fixed identities of a bench run. They exist only inside it.
const (
	// benchPhones is how many phone number ids the uploads are spread
	// over, as a gateway's traffic is: the workers cap their uploads in
	// flight per number.
	benchPhones    = 16
	benchDevKey    = "sflo_test_benchlocalonly_BenchmarkRunOnly0NotASecret00"
	benchMetaToken = "bench-meta-token"
	benchBucket    = "sigfollow-bench"
	graphVersion   = "v23.0"
)

// Timeouts of starting and stopping the parts.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
)

// stack is the pipeline under test: NATS (in this process), MinIO, the
// fake Graph API, and ingest and worker processes that are restarted for
// every scenario, so that each one's peak RSS is its own.
type stack struct {
	cfg  Config
	dir  string   // logs, spool, NATS and MinIO data
	base []string // the environment every child starts from

	nats     *server.Server
	natsURL  string
	minio    *localstack.MinIO
	minioDir string
	minioPID int // 0 if it could not be found
	fake     *child
	fakeURL  string

	ingest     *child
	ingestURL  string
	workers    []*child
	workerURLs []string // each worker's health and metrics server
	// pprofURLs are where ingest and the first worker serve their runtime
	// profiles, if -profile-dir is set.
	pprofURLs map[string]string
	starts    int // pipeline starts so far, to name log files apart

	http *http.Client // for readiness checks and the fake's controls
}

// startStack starts NATS, MinIO and the fake Graph API. The pipeline
// processes start with startPipeline.
func startStack(ctx context.Context, cfg Config, minioBin, dir string, getenv func(string) string) (s *stack, err error) {
	s = &stack{cfg: cfg, dir: dir, http: &http.Client{Timeout: 5 * time.Second}}
	s.base = localstack.ChildEnv(getenv)
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, d := range []string{"nats", "spool", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	s.nats, err = localstack.StartNATS(localstack.NATSConfig{Port: -1, StoreDir: filepath.Join(dir, "nats"), ServerName: "bench"})
	if err != nil {
		return nil, err
	}
	s.natsURL = s.nats.ClientURL()
	minioLog, err := os.Create(filepath.Join(dir, "logs", "minio.log"))
	if err != nil {
		return nil, err
	}
	defer minioLog.Close() // the server process holds its own descriptor
	s.minioDir, err = os.MkdirTemp(cmp.Or(cfg.MinIODir, dir), "minio-")
	if err != nil {
		return nil, fmt.Errorf("MinIO's data directory: %w", err)
	}
	s.minio, err = localstack.StartMinIO(ctx, localstack.MinIOConfig{Binary: minioBin, Dir: s.minioDir, Output: minioLog})
	if err != nil {
		return nil, err
	}
	s.minioPID = childPID("minio")
	addr, err := localstack.FreeAddr()
	if err != nil {
		return nil, err
	}
	s.fakeURL = "http://" + addr
	s.fake, err = startChild("fakegraph", cfg.FakeGraphBin, filepath.Join(dir, "logs"), append(s.env(),
		"FAKEGRAPH_ADDR="+addr, "META_ACCESS_TOKEN="+benchMetaToken, "FAKEGRAPH_LATENCY=0s",
	))
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, s.fakeURL+"/_fake/stats", s.fake); err != nil {
		return nil, err
	}
	return s, nil
}

// env is the environment every child starts from: PATH, HOME and TMPDIR,
// quiet logs, and nothing else (GOMAXPROCS unset: every core).
func (s *stack) env() []string {
	return append(append([]string(nil), s.base...), "LOG_LEVEL=warn", "LOG_FORMAT=json")
}

// startPipeline starts ingest and n worker processes of perProcess
// concurrency each, and waits until all of them are ready.
func (s *stack) startPipeline(ctx context.Context, n, perProcess int) (err error) {
	defer func() {
		if err != nil {
			s.stopPipeline()
		}
	}()
	s.starts++
	logs := filepath.Join(s.dir, "logs")
	common := append(s.env(),
		"NATS_URL="+s.natsURL, "NATS_REPLICAS=1",
		"S3_ENDPOINT="+s.minio.Endpoint, "S3_ACCESS_KEY="+s.minio.AccessKey, "S3_SECRET_KEY="+s.minio.SecretKey,
		"S3_BUCKET="+benchBucket,
	)
	addr, err := localstack.FreeAddr()
	if err != nil {
		return err
	}
	s.ingestURL = "http://" + addr
	s.pprofURLs = map[string]string{}
	ingestEnv, err := s.pprofEnv("ingest")
	if err != nil {
		return err
	}
	s.ingest, err = startChild(fmt.Sprintf("ingest-%02d", s.starts), s.cfg.IngestBin, logs, append(append(common, ingestEnv...),
		"INGEST_ADDR="+addr, "SIGFOLLOW_DEV_API_KEY="+benchDevKey,
		"SYNC_TIMEOUT="+s.cfg.SyncTimeout.String(), "SPOOL_DIR="+filepath.Join(s.dir, "spool"),
		"INLINE_MAX_BYTES="+strconv.FormatInt(s.cfg.InlineMaxBytes, 10),
		"SHUTDOWN_TIMEOUT=10s",
		// The per-key rate limit is checked on every upload, at the
		// highest rate it allows, so that it costs what it costs without
		// turning the run's uploads away.
		"RATE_LIMIT_PER_MINUTE=60000", "RATE_LIMIT_BURST=100000",
		// NATS runs inside bench, beside the client's connections: with 64
		// of them pushing 16 MiB each on two cores, a publish can take
		// longer than the 2 s bound that suits a dedicated server.
		"PUBLISH_TIMEOUT=10s",
	))
	if err != nil {
		return err
	}
	for i := range n {
		addr, err := localstack.FreeAddr()
		if err != nil {
			return err
		}
		var workerEnv []string
		if i == 0 {
			if workerEnv, err = s.pprofEnv("worker"); err != nil {
				return err
			}
		}
		w, err := startChild(fmt.Sprintf("worker-%02d-%d", s.starts, i+1), s.cfg.WorkerBin, logs, append(append(common, workerEnv...),
			"META_BASE_URL="+s.fakeURL, "META_GRAPH_VERSION="+graphVersion, "META_ACCESS_TOKEN="+benchMetaToken,
			"WORKER_CONCURRENCY="+strconv.Itoa(perProcess), "WORKER_METRICS_ADDR="+addr,
			"WORKER_SHUTDOWN_TIMEOUT=10s",
		))
		if err != nil {
			return err
		}
		s.workers = append(s.workers, w)
		s.workerURLs = append(s.workerURLs, "http://"+addr)
	}
	if err := s.waitReady(ctx, s.ingestURL+"/readyz", s.ingest); err != nil {
		return err
	}
	for i, w := range s.workers {
		if err := s.waitReady(ctx, s.workerURLs[i]+"/readyz", w); err != nil {
			return err
		}
	}
	return nil
}

// stopPipeline stops ingest, then every worker.
func (s *stack) stopPipeline() {
	if s.ingest != nil {
		s.ingest.stop(stopTimeout)
		s.ingest = nil
	}
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(func() { w.stop(stopTimeout) })
	}
	wg.Wait()
	s.workers, s.workerURLs = nil, nil
}

// close stops everything.
func (s *stack) close() {
	s.stopPipeline()
	if s.fake != nil {
		s.fake.stop(stopTimeout)
	}
	if s.minio != nil {
		_ = s.minio.Stop()
	}
	if s.minioDir != "" {
		_ = os.RemoveAll(s.minioDir)
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
}

// waitReady polls url until it answers 200, c exits, or readyTimeout
// passes.
func (s *stack) waitReady(ctx context.Context, url string, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ended, err := c.exited(); ended {
			return fmt.Errorf("%s exited before it was ready (%v); its last output:\n%s", c.name, err, c.tail())
		}
		if s.get(ctx, url) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w; its last output:\n%s", c.name, url, ctx.Err(), c.tail())
		case <-tick.C:
		}
	}
}

func (s *stack) get(ctx context.Context, url string) error {
	return s.call(ctx, http.MethodGet, url, nil)
}

// call sends a request and fails unless the answer is 2xx.
func (s *stack) call(ctx context.Context, method, url string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// setLatency sets the fake Graph API's latency.
func (s *stack) setLatency(ctx context.Context, d time.Duration) error {
	return s.call(ctx, http.MethodPut, s.fakeURL+"/_fake/latency", map[string]string{"latency": d.String()})
}

// resetFake makes the fake forget its uploads (and their bytes), and
// restarts its peak RSS from what it holds now.
func (s *stack) resetFake(ctx context.Context) error {
	if err := s.call(ctx, http.MethodPost, s.fakeURL+"/_fake/reset", nil); err != nil {
		return err
	}
	return s.fake.resetPeakRSS()
}

// peaks reads the peak RSS of ingest, each worker and the fake.
func (s *stack) peaks() (rss, error) {
	var r rss
	var err error
	if s.ingest != nil {
		if r.Ingest, err = s.ingest.peakRSS(); err != nil {
			return r, err
		}
	}
	for _, w := range s.workers {
		v, err := w.peakRSS()
		if err != nil {
			return r, err
		}
		r.Workers = append(r.Workers, v)
	}
	r.FakeGraph, err = s.fake.peakRSS()
	return r, err
}

// stageTimes reads the time ingest and the workers spent in each step of
// an upload so far, from their Prometheus metrics (the
// *_stage_duration_seconds histograms), keyed "ingest.<step>" and
// "worker.<step>" (the workers' summed). A process without them adds
// nothing.
func (s *stack) stageTimes(ctx context.Context) stageTimes {
	st := stageTimes{}
	read := func(prefix, url string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
		if err != nil {
			return
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			st.add(prefix, resp.Body)
		}
	}
	if s.ingest != nil {
		read("ingest", s.ingestURL)
	}
	for _, u := range s.workerURLs {
		read("worker", u)
	}
	return st
}

// cpuTimes returns the CPU time each process has used so far: ingest, the
// workers (summed), the fake Graph API, MinIO, and bench itself (the
// client and the embedded NATS server).
func (s *stack) cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	add := func(name string, pid int) {
		if pid == 0 {
			return
		}
		if d, err := cpuTime(pid); err == nil {
			out[name] += d
		}
	}
	if s.ingest != nil {
		add("ingest", s.ingest.cmd.Process.Pid)
	}
	for _, w := range s.workers {
		add("workers", w.cmd.Process.Pid)
	}
	add("fakegraph", s.fake.cmd.Process.Pid)
	add("minio", s.minioPID)
	add("bench+nats", os.Getpid())
	return out
}

// alive fails if a pipeline process has exited.
func (s *stack) alive() error {
	for _, c := range append([]*child{s.fake, s.ingest}, s.workers...) {
		if c == nil {
			continue
		}
		if ended, err := c.exited(); ended {
			return fmt.Errorf("%s exited during the run (%v); its last output:\n%s", c.name, err, c.tail())
		}
	}
	return nil
}

// pprofEnv gives the process called name a PPROF_ADDR of its own, if
// -profile-dir is set, and notes where its profiles are.
func (s *stack) pprofEnv(name string) ([]string, error) {
	if s.cfg.ProfileDir == "" {
		return nil, nil
	}
	addr, err := localstack.FreeAddr()
	if err != nil {
		return nil, err
	}
	s.pprofURLs[name] = "http://" + addr + "/debug/pprof/profile"
	return []string{"PPROF_ADDR=" + addr}, nil
}

// profile takes a CPU profile of every process with a PPROF_ADDR, all at
// once, for -profile-seconds, and writes each to -profile-dir as
// <label>-<process>.pprof. It returns at once; wait waits for the files.
func (s *stack) profile(ctx context.Context, label string) (wait func() error) {
	if len(s.pprofURLs) == 0 {
		return func() error { return nil }
	}
	client := &http.Client{Timeout: time.Duration(s.cfg.ProfileSeconds)*time.Second + 30*time.Second}
	errs := make(chan error, len(s.pprofURLs))
	for name, url := range s.pprofURLs {
		go func() {
			errs <- s.saveProfile(ctx, client, fmt.Sprintf("%s?seconds=%d", url, s.cfg.ProfileSeconds),
				filepath.Join(s.cfg.ProfileDir, label+"-"+name+".pprof"))
		}()
	}
	n := len(s.pprofURLs)
	return func() error {
		var all []error
		for range n {
			all = append(all, <-errs)
		}
		return errors.Join(all...)
	}
}

func (s *stack) saveProfile(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
