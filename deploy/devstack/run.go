package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/localstack"
	"github.com/sigfollow/media/shared/logging"
)

const usage = `usage:
  devstack [flags]   start the whole pipeline locally; Ctrl-C stops it
  devstack env       list the environment variables devstack reads

flags:
`

// MinIO's root credentials in the stack. Its data outlives a run, so they
// are fixed; they are for local use only.
const (
	minioAccessKey = "sigfollow-dev"
	minioSecretKey = "sigfollow-dev-secret"
)

// defaultMetaToken is META_ACCESS_TOKEN's default, which only the fake
// Graph API accepts.
const defaultMetaToken = "dev-meta-token"

// readyBanner starts the text printed once the pipeline accepts uploads.
const readyBanner = "SigFollow media pipeline is ready"

// binaries are the programs devstack runs as child processes.
type binaries struct {
	ingest, worker, minio string
}

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg Config
	if err := envconfig.Parse(&cfg, getenv); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var bins binaries
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&bins.ingest, "ingest", "./bin/ingest", "the ingest `binary`")
	fs.StringVar(&bins.worker, "worker", "./bin/worker", "the worker `binary`")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch fs.Arg(0) {
	case "":
	case "env":
		return envconfig.Print(stdout, &cfg)
	default:
		return fmt.Errorf("unknown command %q (try -h)", fs.Arg(0))
	}
	minio, err := localstack.MinIOBinary(getenv)
	if err != nil {
		return err
	}
	bins.minio = minio
	if err := preflight(cfg, bins); err != nil {
		return err
	}
	return up(ctx, cfg, bins, stdout)
}

// preflight fails fast, naming every address that is taken and every
// binary that is missing, before anything starts.
func preflight(cfg Config, bins binaries) error {
	var errs []error
	for _, l := range cfg.listeners() {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s cannot listen on %s; set %s to a free host:port: %w", l.name, l.addr, l.variable, err))
			continue
		}
		ln.Close()
	}
	for _, b := range []struct{ path, what string }{
		{bins.ingest, "ingest binary (-ingest flag; `make build` builds it)"},
		{bins.worker, "worker binary (-worker flag; `make build` builds it)"},
		{bins.minio, "MinIO server binary (`make tools` installs it; SIGFOLLOW_MINIO_BIN overrides its path)"},
	} {
		if _, err := exec.LookPath(b.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.what, err))
		}
	}
	return errors.Join(errs...)
}

// up starts the stack, waits until ingest is ready, prints the banner,
// and runs until ctx is done, a signal arrives, or a part exits on its own.
// Whatever was started is stopped before it returns.
func up(ctx context.Context, cfg Config, bins binaries, stdout io.Writer) error {
	ctx, force, release := watchSignals(ctx)
	defer release()
	// A stop requested while starting is a clean stop, not a failure.
	startErr := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	names := []string{"devstack", "minio", "fakegraph", "ingest", "worker-" + strconv.Itoa(cfg.Workers)}
	con := newConsole(stdout, names...)
	log, err := logging.New(con.source("devstack"), "devstack", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log.Info("starting", "config", envconfig.LogValue(&cfg))
	defer log.Info("everything stopped")
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("DEVSTACK_DATA_DIR: %w", err)
	}

	natsURL, stopNATS, err := startNATS(cfg.NATSAddr, filepath.Join(dataDir, "nats"))
	if err != nil {
		return startErr(err)
	}
	defer stopNATS()
	log.Info("NATS ready", "url", natsURL)

	minioDir := filepath.Join(dataDir, "minio")
	if err := os.MkdirAll(minioDir, 0o755); err != nil {
		return fmt.Errorf("minio data: %w", err)
	}
	mc, err := localstack.StartMinIO(ctx, localstack.MinIOConfig{
		Binary: bins.minio, Dir: minioDir, Addr: cfg.MinIOAddr,
		AccessKey: minioAccessKey, SecretKey: minioSecretKey, Output: con.source("minio"),
	})
	if err != nil {
		return startErr(fmt.Errorf("start MinIO on %s: %w", cfg.MinIOAddr, err))
	}
	defer func() { _ = mc.Stop(); log.Info("stopped", "process", "minio") }()
	log.Info("MinIO ready", "endpoint", mc.Endpoint)

	// Every child and the fake report their end here; room for all of them
	// means none blocks once nobody listens any more.
	exits := make(chan exit, cfg.Workers+2)
	graphURL := cfg.MetaBaseURL
	if !cfg.fake() && cfg.MetaAccessToken == defaultMetaToken {
		log.Warn("META_BASE_URL is set but META_ACCESS_TOKEN is the fake's default; set it to a token that Graph API accepts")
	}
	if cfg.fake() {
		graphURL = "http://" + dialable(cfg.FakeGraphAddr)
		stopFake, err := startFake(cfg, graphURL, con, exits)
		if err != nil {
			return startErr(err)
		}
		defer func() { stopFake(); log.Info("stopped", "process", "fakegraph") }()
		log.Info("fake Graph API ready", "url", graphURL)
	}

	common := []string{
		"NATS_URL=" + natsURL, "NATS_REPLICAS=1",
		"S3_ENDPOINT=" + mc.Endpoint, "S3_ACCESS_KEY=" + mc.AccessKey, "S3_SECRET_KEY=" + mc.SecretKey,
		"S3_BUCKET=" + cfg.S3Bucket, "LOG_LEVEL=" + cfg.LogLevel, "LOG_FORMAT=" + cfg.LogFormat,
		"SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS=" + cfg.WebhookAllowedCIDRs,
	}
	var kids children
	defer kids.stop(cfg.StopTimeout, force, log)
	kids.ingest, err = startChild("ingest", bins.ingest, append(slices.Clone(common),
		"INGEST_ADDR="+cfg.IngestAddr, "SIGFOLLOW_DEV_API_KEY="+cfg.DevAPIKey,
	), con.source("ingest"), exits)
	if err != nil {
		return err
	}
	workerEnv := append(slices.Clone(common),
		"META_BASE_URL="+graphURL, "META_ACCESS_TOKEN="+cfg.MetaAccessToken,
		"META_PHONE_TOKENS="+phoneTokens(cfg.MetaPhoneTokens), "WORKER_METRICS_ADDR=",
		"SIGFOLLOW_DEV_WEBHOOK_SECRET="+cfg.DevWebhookSecret,
	)
	for i := range cfg.Workers {
		name := "worker-" + strconv.Itoa(i+1)
		w, err := startChild(name, bins.worker, workerEnv, con.source(name), exits)
		if err != nil {
			return err
		}
		kids.workers = append(kids.workers, w)
	}

	ingestURL := "http://" + dialable(cfg.IngestAddr)
	if err := waitReady(ctx, ingestURL+"/readyz", cfg.ReadyTimeout, exits); err != nil {
		return startErr(err)
	}
	con.print(banner(cfg, ingestURL, graphURL, natsURL, mc.Endpoint, dataDir))

	select {
	case <-ctx.Done():
		log.Info("stopping: ingest first, then the workers, the fake Graph API, MinIO and NATS; Ctrl-C again kills them")
		return nil
	case e := <-exits:
		log.Error("exited unexpectedly; stopping everything", "process", e.name, "status", exitStatus(e.err))
		return fmt.Errorf("%s exited unexpectedly (%s)", e.name, exitStatus(e.err))
	}
}

// watchSignals returns a context cancelled by the first SIGINT or SIGTERM
// (or when ctx is done), and a channel closed by the second.
func watchSignals(ctx context.Context) (stopCtx context.Context, force <-chan struct{}, release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	stopCtx, cancel := context.WithCancel(ctx)
	forced, done := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-stopCtx.Done():
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(forced)
		case <-done:
		}
	}()
	return stopCtx, forced, func() { signal.Stop(sigs); close(done); cancel() }
}

// startNATS starts the embedded NATS server listening on addr with its
// JetStream store in dir.
func startNATS(addr, dir string) (url string, stop func(), err error) {
	host, p, _ := net.SplitHostPort(addr) // validated with the config
	port, _ := strconv.Atoi(p)
	ns, err := localstack.StartNATS(localstack.NATSConfig{Host: host, Port: port, StoreDir: dir, ServerName: "devstack"})
	if err != nil {
		return "", nil, fmt.Errorf("start NATS on %s: %w", addr, err)
	}
	return "nats://" + dialable(addr), func() { ns.Shutdown(); ns.WaitForShutdown() }, nil
}

// startFake serves the fake Graph API on cfg.FakeGraphAddr in this process.
func startFake(cfg Config, url string, con *console, exits chan<- exit) (stop func(), err error) {
	log, err := logging.New(con.source("fakegraph"), "fakegraph", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.FakeGraphAddr)
	if err != nil {
		return nil, fmt.Errorf("fake Graph API cannot listen on %s; set FAKEGRAPH_ADDR to a free host:port: %w", cfg.FakeGraphAddr, err)
	}
	hs := &http.Server{
		Handler: fakegraph.New(fakegraph.Config{
			Token: cfg.MetaAccessToken, PhoneTokens: cfg.MetaPhoneTokens, BaseURL: url, Logger: log,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			exits <- exit{name: "fakegraph", err: err}
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

// children are the stack's child processes.
type children struct {
	ingest  *child
	workers []*child
}

// stop stops ingest first, so requests in flight can still be answered by
// the workers, then every worker at once.
func (k *children) stop(timeout time.Duration, force <-chan struct{}, log *slog.Logger) {
	if k.ingest != nil {
		k.ingest.stop(timeout, force, log)
	}
	var wg sync.WaitGroup
	for _, w := range k.workers {
		wg.Go(func() { w.stop(timeout, force, log) })
	}
	wg.Wait()
}

// waitReady polls url until it answers 200, a part of the stack exits, or
// limit passes.
func waitReady(ctx context.Context, url string, limit time.Duration, exits <-chan exit) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		select {
		case e := <-exits:
			return fmt.Errorf("%s exited before the pipeline was ready (%s)", e.name, exitStatus(e.err))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("ingest not ready within %v (DEVSTACK_READY_TIMEOUT): %s: %s", limit, url, last)
		case <-tick.C:
		}
	}
}

// exitStatus describes how a part of the stack ended.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// phoneTokens writes tokens the way META_PHONE_TOKENS is read.
func phoneTokens(tokens map[string]string) string {
	var parts []string
	for _, phone := range slices.Sorted(maps.Keys(tokens)) {
		parts = append(parts, phone+":"+tokens[phone])
	}
	return strings.Join(parts, ",")
}

// banner tells the developer where everything is and how to use it.
func banner(cfg Config, ingestURL, graphURL, natsURL, minioURL, dataDir string) string {
	var b strings.Builder
	row := func(name, value string) { fmt.Fprintf(&b, "  %-15s %s\n", name, value) }
	fmt.Fprintf(&b, "\n%s (for local use only)\n\n", readyBanner)
	row("ingest API", ingestURL+"   (GET /healthz, GET /readyz, POST /v1/{phoneNumberId}/media)")
	row("dev API key", cfg.DevAPIKey)
	row("webhook secret", cfg.DevWebhookSecret+"   (signs the dev key's callbacks; callbacks may reach "+cfg.WebhookAllowedCIDRs+")")
	row("workers", fmt.Sprintf("%d, uploading to %s", cfg.Workers, graphURL))
	if cfg.fake() {
		row("fake Graph API", graphURL+"   (token: META_ACCESS_TOKEN; faults: POST /_fake/faults)")
	}
	row("NATS", natsURL)
	row("MinIO", fmt.Sprintf("%s   (access key %s, secret key %s, bucket %s)", minioURL, minioAccessKey, minioSecretKey, cfg.S3Bucket))
	row("data", dataDir)
	fmt.Fprintf(&b, "\nUpload a file:\n  curl -sS -X POST %s/v1/1234567890/media -H \"Authorization: Bearer %s\" -F messaging_product=whatsapp -F \"file=@shared/mediatype/testdata/accept/image.jpg;type=image/jpeg\"\n",
		ingestURL, cfg.DevAPIKey)
	if cfg.fake() {
		fmt.Fprintf(&b, "\nSee what reached the fake Graph API:\n  curl -sS %s/_fake/media\n", graphURL)
	}
	b.WriteString("\nPress Ctrl-C to stop everything.\n\n")
	return b.String()
}
