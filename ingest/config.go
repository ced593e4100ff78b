package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/mediatype"
	"github.com/sigfollow/media/shared/ratelimit"
)

// Config is everything ingest reads from its environment. Each field's
// default is in its envDefault tag; `ingest env` lists them.
type Config struct {
	// Addr is where the HTTP API listens.
	Addr string `env:"INGEST_ADDR" envDefault:"127.0.0.1:8080"`
	// NATSURL locates NATS (JetStream enabled). Comma-separate several
	// servers of a cluster.
	NATSURL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// NATSReplicas is the replica count of the job stream and key-value
	// buckets: 1 on a single server, 3 on a three-node cluster.
	NATSReplicas int `env:"NATS_REPLICAS" envDefault:"1"`
	// S3Endpoint is the object store's URL (MinIO or any S3-compatible store).
	S3Endpoint  string `env:"S3_ENDPOINT" envDefault:"http://127.0.0.1:9000"`
	S3AccessKey string `env:"S3_ACCESS_KEY" secret:"true"`
	S3SecretKey string `env:"S3_SECRET_KEY" secret:"true"`
	S3Region    string `env:"S3_REGION" envDefault:"us-east-1"`
	// S3Bucket holds staged uploads; created at start if missing.
	S3Bucket string `env:"S3_BUCKET" envDefault:"sigfollow-staging"`
	// DevAPIKey, if set, is accepted as an API key with messages:send for
	// every phone number id. For local development only.
	DevAPIKey string `env:"SIGFOLLOW_DEV_API_KEY" secret:"true"`
	// SyncTimeout is how long POST /media waits for Meta's answer before
	// answering 504 with the job id (the job still completes).
	SyncTimeout time.Duration `env:"SYNC_TIMEOUT" envDefault:"60s"`
	// PublishTimeout bounds a JetStream publish; past it the client gets 503.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"2s"`
	// SpoolDir holds uploads too large for memory while they are checked;
	// empty means the system's temporary directory.
	SpoolDir string `env:"SPOOL_DIR"`
	// SpoolMemoryBytes is the largest upload kept in memory while it is
	// checked; larger ones go to an unlinked file in SpoolDir.
	SpoolMemoryBytes int `env:"SPOOL_MEMORY_BYTES" envDefault:"1048576"`
	// InlineMaxBytes is the largest file carried in its job message
	// (stored and replicated by JetStream with the job) instead of being
	// staged in the object store: a small upload then skips the store's
	// durable write and the worker's read. 0 stages every file; at most
	// 524288, and the NATS server's max_payload must hold the job.
	InlineMaxBytes int64 `env:"INLINE_MAX_BYTES" envDefault:"131072"`
	// ReadTimeout bounds reading one whole request, body included.
	ReadTimeout time.Duration `env:"READ_TIMEOUT" envDefault:"5m"`
	// ReadHeaderTimeout bounds reading a request's headers; a client that
	// sends them slower loses the connection.
	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"10s"`
	// BodyIdleTimeout is the longest a request body may stall between two
	// reads before the request fails (a client that stops sending mid-upload
	// frees its connection); 0 disables it.
	BodyIdleTimeout time.Duration `env:"BODY_IDLE_TIMEOUT" envDefault:"30s"`
	// RateLimitPerMinute is each API key's sustained rate on POST /media,
	// shared by every ingest replica; 0 disables rate limiting.
	RateLimitPerMinute int `env:"RATE_LIMIT_PER_MINUTE" envDefault:"600"`
	// RateLimitBurst is how many uploads a key may send at once.
	RateLimitBurst int `env:"RATE_LIMIT_BURST" envDefault:"60"`
	// SignatureEnforcement is "enforce" (keys created with
	// -require-signature must sign every upload) or "off" (no signature is
	// checked, for clients that cannot sign yet).
	SignatureEnforcement string `env:"SIGNATURE_ENFORCEMENT" envDefault:"enforce"`
	// OTLPEndpoint, if set, is where traces are exported over OTLP/HTTP
	// (the standard OpenTelemetry variable); trace context is propagated
	// either way.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// ShutdownTimeout bounds finishing in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"90s"`
	// WebhookAllowedCIDRs are non-public ranges a callback_url may still
	// name, comma-separated (e.g. 127.0.0.0/8 for local development). Empty
	// (the default) accepts public addresses only. Set the same on workers.
	WebhookAllowedCIDRs string `env:"SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS"`
	// JobStatusTTL is how long a job's status record is kept.
	JobStatusTTL time.Duration `env:"JOB_STATUS_TTL" envDefault:"168h"`
	// MediaCacheTTL is how long a media id is reused for the same bytes,
	// type and phone number; under Meta's 30 days.
	MediaCacheTTL time.Duration `env:"MEDIA_CACHE_TTL" envDefault:"696h"`
	// PprofAddr, if set, is where Go's runtime profiles are served
	// (/debug/pprof/), for profiling a running process; keep it on
	// loopback. Empty (the default) serves nothing.
	PprofAddr string `env:"PPROF_ADDR"`
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

func (c *Config) validate() error {
	var errs []error
	if c.NATSReplicas != 1 && c.NATSReplicas != 3 && c.NATSReplicas != 5 {
		errs = append(errs, fmt.Errorf("NATS_REPLICAS must be 1, 3 or 5, not %d", c.NATSReplicas))
	}
	if c.SyncTimeout <= 0 || c.PublishTimeout <= 0 || c.ReadTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SYNC_TIMEOUT, PUBLISH_TIMEOUT, READ_TIMEOUT and SHUTDOWN_TIMEOUT must be positive"))
	}
	if c.SpoolMemoryBytes < 0 || int64(c.SpoolMemoryBytes) > mediatype.MaxUploadSize {
		errs = append(errs, fmt.Errorf("SPOOL_MEMORY_BYTES must be between 0 and %d", mediatype.MaxUploadSize))
	}
	if c.InlineMaxBytes < 0 || c.InlineMaxBytes > job.MaxInlineBytes {
		errs = append(errs, fmt.Errorf("INLINE_MAX_BYTES must be between 0 and %d, not %d", job.MaxInlineBytes, c.InlineMaxBytes))
	}
	if c.S3Bucket == "" {
		errs = append(errs, errors.New("S3_BUCKET must not be empty"))
	}
	if c.BodyIdleTimeout < 0 || c.ReadHeaderTimeout <= 0 {
		errs = append(errs, errors.New("BODY_IDLE_TIMEOUT must not be negative and READ_HEADER_TIMEOUT must be positive"))
	}
	if c.RateLimitPerMinute != 0 && !c.rateLimit().Valid() {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_PER_MINUTE (%d) must be 0 (off) or 1 to 60000, and RATE_LIMIT_BURST (%d) at least 1",
			c.RateLimitPerMinute, c.RateLimitBurst))
	}
	if c.SignatureEnforcement != server.SignatureEnforce && c.SignatureEnforcement != server.SignatureOff {
		errs = append(errs, fmt.Errorf("SIGNATURE_ENFORCEMENT must be %q or %q, not %q",
			server.SignatureEnforce, server.SignatureOff, c.SignatureEnforcement))
	}
	errs = append(errs, c.validateAsync()...)
	return errors.Join(errs...)
}

// rateLimit is the per-key limit on POST /media.
func (c *Config) rateLimit() ratelimit.Limit {
	return ratelimit.Limit{PerMinute: c.RateLimitPerMinute, Burst: c.RateLimitBurst}
}
