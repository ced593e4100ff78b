package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/ratelimit"
	"github.com/sigfollow/media/shared/tracing"
)

// Config tunes the server; run fills it from the binary's Config.
type Config struct {
	// Bucket is the staging bucket.
	Bucket string
	// SyncTimeout is how long the synchronous route waits for the worker's
	// answer before answering 504 with the job id.
	SyncTimeout time.Duration
	// PublishTimeout bounds a JetStream publish, so that an outage fails
	// fast with 503 instead of hanging.
	PublishTimeout time.Duration
	// RateLimit is each API key's budget on POST /media, shared by every
	// replica through Deps.Limiter.
	RateLimit ratelimit.Limit
	// EnforceSignatures makes POST /media check X-SigFollow-Signature for
	// keys that require signing; false checks none.
	EnforceSignatures bool
	// ReadTimeout is the longest a whole request may take to arrive (the
	// http.Server's ReadTimeout); BodyIdleTimeout the longest the body may
	// stall between two reads. Zero disables the idle check.
	ReadTimeout     time.Duration
	BodyIdleTimeout time.Duration
	// InlineMaxBytes is the largest file a job carries in its message
	// instead of staging it in the object store (at most
	// job.MaxInlineBytes); 0 stages every file.
	InlineMaxBytes int64
}

// Deps are the server's collaborators, wired in run.
type Deps struct {
	Log      *slog.Logger
	Auth     *apikey.Authenticator
	Receiver *upload.Receiver
	Store    *minio.Client
	NATS     *nats.Conn
	JS       jetstream.JetStream
	Results  jetstream.KeyValue
	// Async enables asynchronous jobs, job status, Idempotency-Key and the
	// media-id cache (async.go); nil disables them.
	Async *AsyncDeps
	// Limiter holds the shared rate-limit state; nil disables rate
	// limiting.
	Limiter *ratelimit.Limiter
	// Metrics are served on /metrics; nil makes a set on a fresh registry.
	Metrics *Metrics
	// Tracing makes the request spans; nil traces nothing.
	Tracing trace.TracerProvider
}

// Server is ingest's HTTP API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	auth    *apikey.Authenticator
	recv    *upload.Receiver
	store   *minio.Client
	nc      *nats.Conn
	js      jetstream.JetStream
	results jetstream.KeyValue
	async   *asyncState
	replies *replies
	echo    *echo.Echo
	limiter *ratelimit.Limiter
	metrics *Metrics
	tracer  trace.Tracer
}

// New builds the server and its routes.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.SyncTimeout <= 0 || cfg.PublishTimeout <= 0 || cfg.Bucket == "" {
		return nil, errors.New("server: Bucket, SyncTimeout and PublishTimeout are required")
	}
	if cfg.InlineMaxBytes < 0 || cfg.InlineMaxBytes > job.MaxInlineBytes {
		return nil, fmt.Errorf("server: InlineMaxBytes %d is not between 0 and %d", cfg.InlineMaxBytes, job.MaxInlineBytes)
	}
	async, err := newAsyncState(d.Async)
	if err != nil {
		return nil, err
	}
	r, err := newReplies(d.NATS)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: d.Log, auth: d.Auth, recv: d.Receiver, store: d.Store,
		nc: d.NATS, js: d.JS, results: d.Results, replies: r, async: async,
		limiter: d.Limiter, metrics: d.Metrics,
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(prometheus.NewRegistry())
	}
	if d.Tracing == nil {
		d.Tracing = noop.NewTracerProvider()
	}
	s.tracer = d.Tracing.Tracer("github.com/sigfollow/media/ingest/server")
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: func() string { return uuid.NewString() },
	}))
	e.Use(s.traceRequests, s.logRequests)
	e.Use(middleware.Recover())
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics.handler())
	e.POST("/v1/:phoneNumberId/media", s.uploadMedia, s.authenticate, s.rateLimit)
	e.GET("/v1/:phoneNumberId/media/jobs/:jobId", s.jobStatus, s.authenticate, s.rateLimit)
	s.echo = e
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close releases the reply subscription.
func (s *Server) Close() { s.replies.close() }

// logRequests writes one structured line per request. It logs the route
// pattern and ids, never headers: the Authorization header holds a secret.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		s.metrics.observeRequest(c, time.Since(start))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.Int("status", status),
			slog.Int64("request_bytes", c.Request().ContentLength),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.RealIP()),
			slog.String("trace_id", tracing.TraceID(c.Request().Context())),
		)
		return nil
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether NATS (with JetStream) and the object store answer.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"nats": "ok", "storage": "ok"}
	ready := true
	if !s.nc.IsConnected() {
		checks["nats"], ready = "disconnected", false
	} else if _, err := s.js.AccountInfo(ctx); err != nil {
		checks["nats"], ready = "jetstream unavailable", false
	}
	if ok, err := s.store.BucketExists(ctx, s.cfg.Bucket); err != nil {
		checks["storage"], ready = "unreachable", false
	} else if !ok {
		checks["storage"], ready = "bucket missing", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ready, "checks": checks})
}
