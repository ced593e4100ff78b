package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/health"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/logging"
	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/profiling"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/ratelimit"
	"github.com/sigfollow/media/shared/tracing"
)

const usage = `usage:
  ingest                 serve the media API (configured by environment variables)
  ingest keys ...        manage API keys (ingest keys help)
  ingest env             list the environment variables ingest reads
  ingest healthcheck     exit 0 if the local server answers /healthz (for container health checks)
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg Config
	if err := envconfig.Parse(&cfg, getenv); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cmd := ""
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "", "serve":
		return serve(ctx, cfg, stderr, nil)
	case "keys":
		return runKeys(ctx, cfg, args[2:], stdout)
	case "env":
		return envconfig.Print(stdout, &cfg)
	case "healthcheck":
		return health.Probe(ctx, cfg.Addr)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// serve runs the API until ctx is done or SIGINT/SIGTERM arrives, then
// stops accepting and finishes in-flight requests. If ready is not nil it
// receives the listening address once the server accepts connections.
func serve(ctx context.Context, cfg Config, stderr io.Writer, ready chan<- string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log, err := logging.New(stderr, "ingest", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log.Info("starting", "config", envconfig.LogValue(&cfg))

	nc, js, topo, err := connectQueue(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := connectStore(ctx, cfg)
	if err != nil {
		return err
	}

	tp, err := tracing.NewProvider(ctx, tracing.Config{Service: "sigfollow-ingest", OTLPEndpoint: cfg.OTLPEndpoint}, log)
	if err != nil {
		return err
	}
	defer tracing.Shutdown(tp, log)
	_, stopProfiles, err := profiling.Serve(cfg.PprofAddr, log)
	if err != nil {
		return err
	}
	defer stopProfiles(context.Background())
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var limiter *ratelimit.Limiter
	if cfg.RateLimitPerMinute > 0 {
		limiter = ratelimit.New(topo.RateLimits, nil)
	}

	srv, err := server.New(server.Config{
		Bucket: cfg.S3Bucket, SyncTimeout: cfg.SyncTimeout, PublishTimeout: cfg.PublishTimeout,
		RateLimit: cfg.rateLimit(), EnforceSignatures: cfg.SignatureEnforcement == server.SignatureEnforce,
		ReadTimeout: cfg.ReadTimeout, BodyIdleTimeout: cfg.BodyIdleTimeout, InlineMaxBytes: cfg.InlineMaxBytes,
	}, server.Deps{
		Log: log, Auth: apikey.NewAuthenticator(apikey.NewStore(topo.Keys), cfg.DevAPIKey),
		Receiver: upload.NewReceiver(cfg.SpoolDir, cfg.SpoolMemoryBytes),
		Store:    store, NATS: nc, JS: js, Results: topo.Results, Async: cfg.asyncDeps(topo),
		Limiter: limiter, Metrics: server.NewMetrics(reg), Tracing: tp,
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		// The synchronous route waits for Meta before it writes.
		WriteTimeout:   cfg.SyncTimeout + cfg.ReadTimeout,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// connectQueue connects to NATS and declares the topology, waiting for
// NATS as long as ctx allows.
func connectQueue(ctx context.Context, cfg Config, log *slog.Logger) (*nats.Conn, jetstream.JetStream, *queue.Topology, error) {
	// Nothing is held back for a reconnect: a job published while the
	// connection is down must fail now, with the 503 that says nothing
	// was queued, not be sent later behind the client's back.
	nc, err := queue.Connect(cfg.NATSURL, "ingest", log, nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	topo, err := queue.Declare(ctx, js, queue.Config{Replicas: cfg.NATSReplicas, StatusTTL: cfg.JobStatusTTL, CacheTTL: cfg.MediaCacheTTL}, log)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	if cfg.InlineMaxBytes > 0 {
		if need := job.InlineMessageBytes(cfg.InlineMaxBytes); need > nc.MaxPayload() {
			nc.Close()
			return nil, nil, nil, fmt.Errorf("INLINE_MAX_BYTES=%d makes job messages of up to %d bytes, over the NATS server's max_payload of %d: lower INLINE_MAX_BYTES or raise max_payload",
				cfg.InlineMaxBytes, need, nc.MaxPayload())
		}
	}
	return nc, js, topo, nil
}

func connectStore(ctx context.Context, cfg Config) (*minio.Client, error) {
	store, err := objstore.New(objstore.Config{
		Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		Region: cfg.S3Region, Bucket: cfg.S3Bucket,
	})
	if err != nil {
		return nil, err
	}
	if err := objstore.EnsureBucket(ctx, store, cfg.S3Bucket); err != nil {
		return nil, err
	}
	return store, nil
}
