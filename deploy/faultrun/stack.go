package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/localstack"
)

// The fixed identities of a fault run. They exist only inside it.
const (
	runDevKey    = "sflo_test_faultrunlocalonly_NotASecret000000000000"
	runMetaToken = "faultrun-meta-token"
	runBucket    = "sigfollow-faultrun"
	readyWithin  = 60 * time.Second
)

// stack is the pipeline under fire.
type stack struct {
	cfg  Config
	dir  string
	base []string // the environment every child starts from
	log  *slog.Logger
	http *http.Client

	mu       sync.Mutex
	natsCfg  localstack.NATSConfig
	nats     *server.Server
	natsURL  string
	minio    *localstack.MinIO
	graph    *fakegraph.Server
	graphSrv *http.Server
	graphURL string

	ingest    *proc
	ingestURL string
	workers   []*proc // by slot; a restarted worker takes its slot again
	started   int     // processes started, to name log files apart
	closed    sync.Once
}

// proc is one ingest or worker process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	health string // host:port of its /readyz
	done   chan struct{}
	err    error
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startStack starts NATS, MinIO, the fake Graph API, ingest and the workers,
// and waits until each is ready.
func startStack(ctx context.Context, cfg Config, minioBin, dir string, getenv func(string) string, log *slog.Logger) (_ *stack, err error) {
	s := &stack{cfg: cfg, dir: dir, log: log, http: &http.Client{Timeout: 5 * time.Second}}
	s.base = localstack.ChildEnv(getenv)
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, d := range []string{"nats", "logs", "spool"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	natsAddr, err := localstack.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(natsAddr)
	s.natsCfg = localstack.NATSConfig{Port: atoi(port), StoreDir: filepath.Join(dir, "nats"), ServerName: "faultrun"}
	s.natsURL = "nats://" + natsAddr
	if err := s.startNATS(); err != nil {
		return nil, err
	}
	minioLog, err := os.Create(filepath.Join(dir, "logs", "minio.log"))
	if err != nil {
		return nil, err
	}
	s.minio, err = localstack.StartMinIO(ctx, localstack.MinIOConfig{Binary: minioBin, Dir: filepath.Join(dir, "minio"), Output: minioLog})
	if err != nil {
		return nil, err
	}

	s.graph = fakegraph.New(fakegraph.Config{Token: runMetaToken})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.graphURL = "http://" + ln.Addr().String()
	s.graphSrv = &http.Server{Handler: s.graph, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.graphSrv.Serve(ln) }()

	ingestAddr, err := localstack.FreeAddr()
	if err != nil {
		return nil, err
	}
	s.ingestURL = "http://" + ingestAddr
	s.ingest, err = s.startProc(ctx, "ingest", cfg.Ingest, ingestAddr, []string{
		"INGEST_ADDR=" + ingestAddr, "SYNC_TIMEOUT=" + cfg.SyncTimeout.String(), "PUBLISH_TIMEOUT=2s",
		"SHUTDOWN_TIMEOUT=20s", "SIGFOLLOW_DEV_API_KEY=" + runDevKey, "SPOOL_DIR=" + filepath.Join(dir, "spool"),
		"RATE_LIMIT_PER_MINUTE=0", // the load is the point here, not the limits
	})
	if err != nil {
		return nil, err
	}
	s.workers = make([]*proc, cfg.Workers)
	for i := range cfg.Workers {
		if err := s.startWorker(ctx, i); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// env is what ingest and the workers share.
func (s *stack) env() []string {
	return append(append([]string(nil), s.base...),
		"NATS_URL="+s.natsURL, "S3_ENDPOINT="+s.minio.Endpoint, "S3_ACCESS_KEY="+s.minio.AccessKey,
		"S3_SECRET_KEY="+s.minio.SecretKey, "S3_BUCKET="+runBucket, "LOG_LEVEL=info", "LOG_FORMAT=text")
}

// startProc starts a pipeline binary and waits for its /readyz on health.
func (s *stack) startProc(ctx context.Context, name, bin, health string, extra []string) (*proc, error) {
	s.mu.Lock()
	s.started++
	logPath := filepath.Join(s.dir, "logs", fmt.Sprintf("%02d-%s.log", s.started, name))
	s.mu.Unlock()
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(s.env(), extra...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, health: health, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); out.Close(); close(p.done) }()
	if err := s.waitReady(ctx, p); err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s (log: %s): %w", name, logPath, err)
	}
	return p, nil
}

func (s *stack) waitReady(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	for {
		if p.exited() {
			return fmt.Errorf("exited at start: %v", p.err)
		}
		if s.ready(ctx, p.health) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("not ready in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *stack) ready(ctx context.Context, hostport string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+"/readyz", nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startWorker starts the worker of slot i.
func (s *stack) startWorker(ctx context.Context, i int) error {
	health, err := localstack.FreeAddr()
	if err != nil {
		return err
	}
	p, err := s.startProc(ctx, fmt.Sprintf("worker-%d", i+1), s.cfg.Worker, health, []string{
		"WORKER_METRICS_ADDR=" + health, "META_BASE_URL=" + s.graphURL, "META_ACCESS_TOKEN=" + runMetaToken,
		"WORKER_CONCURRENCY=4", "WORKER_ACK_WAIT=2s", "WORKER_MAX_DELIVER=" + strconv.Itoa(s.cfg.MaxDeliver),
		"WORKER_BACKOFF_BASE=100ms", "WORKER_BACKOFF_MAX=1s", "WORKER_SHUTDOWN_TIMEOUT=10s",
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.workers[i] = p
	s.mu.Unlock()
	return nil
}

// killWorker SIGKILLs the worker of slot i, as a crash would.
func (s *stack) killWorker(i int) {
	p := s.worker(i)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stopWorker stops the worker of slot i with SIGTERM, as a rolling restart
// does, and reports whether it exited cleanly in time.
func (s *stack) stopWorker(i int) error {
	p := s.worker(i)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("did not stop within 30s of SIGTERM")
	}
}

func (s *stack) worker(i int) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers[i]
}

func (s *stack) startNATS() error {
	srv, err := localstack.StartNATS(s.natsCfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.nats = srv
	s.mu.Unlock()
	return nil
}

func (s *stack) stopNATS() {
	s.mu.Lock()
	srv := s.nats
	s.nats = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// close stops everything, pipeline processes first. Calls after the first
// do nothing.
func (s *stack) close() { s.closed.Do(s.shutdown) }

func (s *stack) shutdown() {
	var procs []*proc
	s.mu.Lock()
	if s.ingest != nil {
		procs = append(procs, s.ingest)
	}
	for _, w := range s.workers {
		if w != nil {
			procs = append(procs, w)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			if p.exited() {
				return
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		})
	}
	wg.Wait()
	if s.graphSrv != nil {
		_ = s.graphSrv.Close()
	}
	if s.minio != nil {
		_ = s.minio.Stop()
	}
	s.stopNATS()
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
