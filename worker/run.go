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

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/logging"
	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/worker/graph"
	"github.com/sigfollow/media/worker/process"
)

const usage = `usage:
  worker        pull upload jobs and send them to Meta (configured by environment variables)
  worker env    list the environment variables worker reads
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

	var ready atomic.Bool
	if cfg.MetricsAddr != "" {
		shutdown, err := serveHealth(cfg.MetricsAddr, nc, &ready, log)
		if err != nil {
			return err
		}
		defer shutdown()
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	topo, err := queue.Declare(ctx, js, queue.Config{Replicas: cfg.NATSReplicas}, log)
	if err != nil {
		return stoppedEarly(err)
	}
	cons, err := queue.DeclareConsumer(ctx, topo.Jobs, queue.ConsumerConfig{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		return stoppedEarly(err)
	}
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
		Graph: meta, Store: store, Results: topo.Results, Conn: nc, Log: log,
	})
	if err != nil {
		return err
	}

	ready.Store(true)
	log.Info("ready", "consumer", queue.Consumer, "stream", topo.Jobs.CachedInfo().Config.Name)
	proc.Run(ctx, cons)
	ready.Store(false)
	log.Info("stopped")
	return nil
}

// serveHealth serves /healthz (the process is alive) and /readyz (it is
// pulling jobs and connected to NATS) on addr until shutdown is called.
func serveHealth(addr string, nc *nats.Conn, ready *atomic.Bool, log *slog.Logger) (shutdown func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
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
