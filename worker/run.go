package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/health"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/logging"
	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/profiling"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/tracing"
	"github.com/sigfollow/media/worker/graph"
	"github.com/sigfollow/media/worker/process"
)

const usage = `usage:
  worker        pull upload jobs and send them to Meta (configured by environment variables)
  worker env    list the environment variables worker reads
  worker dlq    list, replay or drop dead-lettered jobs (worker dlq help)
  worker healthcheck
                exit 0 if the local worker answers /healthz on WORKER_METRICS_ADDR (for container health checks)
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg Config
	if err := envconfig.Parse(&cfg, getenv); err != nil {
		return err
	}
	cmd := ""
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "", "serve":
		if err := cfg.validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		return serve(ctx, cfg, stderr)
	case "env":
		return envconfig.Print(stdout, &cfg)
	case "dlq":
		return runDLQ(ctx, cfg, args[2:], stdout)
	case "healthcheck":
		return health.Probe(ctx, cfg.MetricsAddr)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// serve handles jobs until ctx is done or SIGINT/SIGTERM arrives, then stops
// gracefully (see process.Processor.Run). A stop before start-up completes
// is not an error.
func serve(ctx context.Context, cfg Config, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log, err := logging.New(stderr, "worker", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log.Info("starting", "config", envconfig.LogValue(cfg.logged()))
	stoppedEarly := func(err error) error {
		if ctx.Err() != nil {
			log.Info("stopped before start-up completed", "err", err)
			return nil
		}
		return err
	}

	nc, err := queue.Connect(cfg.NATSURL, "worker", log)
	if err != nil {
		return err
	}
	defer func() {
		// Acks and hand-backs sent last must leave before the connection goes.
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			log.Warn("flushing the NATS connection failed", "err", err)
		}
		nc.Close()
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := process.NewMetrics(reg)
	tp, err := tracing.NewProvider(ctx, tracing.Config{Service: "sigfollow-worker", OTLPEndpoint: cfg.OTLPEndpoint}, log)
	if err != nil {
		return err
	}
	defer tracing.Shutdown(tp, log)
	_, stopProfiles, err := profiling.Serve(cfg.PprofAddr, log)
	if err != nil {
		return err
	}
	defer stopProfiles(context.Background())

	var ready atomic.Bool
	if cfg.MetricsAddr != "" {
		shutdown, err := serveHealth(cfg.MetricsAddr, nc, &ready, reg, log)
		if err != nil {
			return err
		}
		defer shutdown()
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	topo, err := queue.Declare(ctx, js, queue.Config{Replicas: cfg.NATSReplicas, StatusTTL: cfg.JobStatusTTL, CacheTTL: cfg.MediaCacheTTL}, log)
	if err != nil {
		return stoppedEarly(err)
	}
	cons, err := queue.DeclareConsumer(ctx, topo.Jobs, queue.ConsumerConfig{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		return stoppedEarly(err)
	}
	reg.MustRegister(process.NewQueueCollector(cons))
	store, err := objstore.New(objstore.Config{
		Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		Region: cfg.S3Region, Bucket: cfg.S3Bucket,
	})
	if err != nil {
		return err
	}
	if err := objstore.EnsureBucket(ctx, store, cfg.S3Bucket); err != nil {
		return stoppedEarly(err)
	}
	meta, err := graph.New(graph.Config{BaseURL: cfg.MetaBaseURL, Version: cfg.MetaGraphVersion, Timeout: cfg.MetaUploadTimeout})
	if err != nil {
		return err
	}
	proc, err := process.New(cfg.processConfig(), process.Deps{
		Graph: meta, Store: store, Results: topo.Results, Conn: nc, Log: log, Metrics: metrics, Tracing: tp,
		Async:       &process.Async{Statuses: job.NewStatuses(topo.Status), Cache: topo.Cache, JS: js},
		DeadLetters: queue.NewDeadLetters(js, topo),
	})
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if err := proc.WatchDeadLetters(watchCtx); err != nil {
			log.Error("watching for jobs that used up their deliveries failed", "err", err)
		}
	}()
	defer func() { stopWatch(); <-watched }()
	stopDispatching, err := startDispatcher(ctx, cfg, js, topo, log)
	if err != nil {
		return stoppedEarly(err)
	}
	defer stopDispatching()

	ready.Store(true)
	log.Info("ready", "consumer", queue.Consumer, "stream", topo.Jobs.CachedInfo().Config.Name)
	proc.Run(ctx, cons)
	ready.Store(false)
	log.Info("stopped")
	return nil
}

// serveHealth serves /healthz (the process is alive), /readyz (it is
// pulling jobs and connected to NATS) and /metrics (reg, in Prometheus'
// format) on addr until shutdown is called.
func serveHealth(addr string, nc *nats.Conn, ready *atomic.Bool, reg *prometheus.Registry, log *slog.Logger) (shutdown func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() || !nc.IsConnected() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server failed", "err", err)
		}
	}()
	log.Info("serving health checks", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
