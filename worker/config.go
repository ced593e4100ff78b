package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/worker/process"
)

// Config is everything the worker reads from its environment. Each field's
// default is in its envDefault tag; `worker env` lists them.
type Config struct {
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

	// MetaBaseURL is the Graph API's root URL.
	MetaBaseURL string `env:"META_BASE_URL" envDefault:"https://graph.facebook.com"`
	// MetaGraphVersion is the Graph API version in every path.
	MetaGraphVersion string `env:"META_GRAPH_VERSION" envDefault:"v23.0"`
	// MetaAccessToken is the token for every phone number id without its
	// own in MetaPhoneTokens: a system-user token with
	// whatsapp_business_messaging. No default.
	MetaAccessToken string `env:"META_ACCESS_TOKEN" secret:"true"`
	// MetaPhoneTokens are per-number tokens overriding MetaAccessToken, as
	// "phoneid:token,phoneid:token". No default.
	MetaPhoneTokens map[string]string `env:"META_PHONE_TOKENS" secret:"true"`
	// MetaUploadTimeout bounds one upload to Meta, from connecting to
	// Meta's answer; a timed-out upload is retried.
	MetaUploadTimeout time.Duration `env:"META_UPLOAD_TIMEOUT" envDefault:"5m"`

	// Concurrency is how many uploads one process runs at once; it never
	// pulls more jobs than that.
	Concurrency int `env:"WORKER_CONCURRENCY" envDefault:"4"`
	// AckWait is how long a job may go without a progress heartbeat before
	// JetStream hands it to another worker. Heartbeats go out every third of
	// it during an upload.
	AckWait time.Duration `env:"WORKER_ACK_WAIT" envDefault:"60s"`
	// MaxDeliver is how many times a job is delivered at most; a retryable
	// failure on the last delivery is final and answered as such.
	MaxDeliver int `env:"WORKER_MAX_DELIVER" envDefault:"8"`
	// BackoffBase and BackoffMax bound the delay between retries: the
	// ceiling doubles from BackoffBase per delivery up to BackoffMax, and the
	// delay is drawn at random below it.
	BackoffBase time.Duration `env:"WORKER_BACKOFF_BASE" envDefault:"1s"`
	BackoffMax  time.Duration `env:"WORKER_BACKOFF_MAX" envDefault:"30s"`
	// ShutdownTimeout is how long SIGTERM waits for uploads in flight before
	// handing them back to the queue.
	ShutdownTimeout time.Duration `env:"WORKER_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// MaxInflightPerPhone caps one process's uploads in flight to Meta for
	// one phone number id, so one busy or throttled number cannot take every
	// slot; across N worker processes a number has at most N times this.
	// 0 means no cap beyond WORKER_CONCURRENCY.
	MaxInflightPerPhone int `env:"WORKER_MAX_INFLIGHT_PER_PHONE" envDefault:"2"`
	// MetricsAddr, if set, is where /healthz, /readyz and /metrics
	// (Prometheus) are served. Empty (the default) serves nothing.
	MetricsAddr string `env:"WORKER_METRICS_ADDR"`
	// PprofAddr, if set, is where Go's runtime profiles are served
	// (/debug/pprof/), for profiling a running process; keep it on
	// loopback. Empty (the default) serves nothing.
	PprofAddr string `env:"PPROF_ADDR"`
	// OTLPEndpoint, if set, is where traces are exported over OTLP/HTTP
	// (the standard OpenTelemetry variable); trace context is carried from
	// ingest either way and logged as trace_id.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`

	// WebhookSchedule is the delay before each webhook try, comma-separated;
	// its length is the number of tries. After the last failed try the
	// delivery is dead-lettered.
	WebhookSchedule []time.Duration `env:"WEBHOOK_SCHEDULE" envDefault:"0s,5s,5m,30m,2h,5h,10h,10h"`
	// WebhookTimeout bounds one webhook try.
	WebhookTimeout time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"15s"`
	// WebhookMaxRetryAfter caps how far a receiver's Retry-After may
	// postpone the next try.
	WebhookMaxRetryAfter time.Duration `env:"WEBHOOK_MAX_RETRY_AFTER" envDefault:"24h"`
	// WebhookConcurrency is how many webhooks one process sends at once.
	WebhookConcurrency int `env:"WEBHOOK_CONCURRENCY" envDefault:"16"`
	// WebhookAllowedCIDRs are non-public ranges webhooks may still be sent
	// to, comma-separated (e.g. 127.0.0.0/8 for local development). Empty
	// (the default) allows public addresses only.
	WebhookAllowedCIDRs string `env:"SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS"`
	// DevWebhookSecret signs the webhooks of jobs submitted with
	// SIGFOLLOW_DEV_API_KEY ("whsec_" and base64). For local development.
	DevWebhookSecret string `env:"SIGFOLLOW_DEV_WEBHOOK_SECRET" secret:"true"`
	// JobStatusTTL is how long a job's status record is kept.
	JobStatusTTL time.Duration `env:"JOB_STATUS_TTL" envDefault:"168h"`
	// MediaCacheTTL is how long a media id is reused for the same bytes,
	// type and phone number; under Meta's 30 days.
	MediaCacheTTL time.Duration `env:"MEDIA_CACHE_TTL" envDefault:"696h"`

	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

func (c *Config) validate() error {
	var errs []error
	if c.NATSReplicas != 1 && c.NATSReplicas != 3 && c.NATSReplicas != 5 {
		errs = append(errs, fmt.Errorf("NATS_REPLICAS must be 1, 3 or 5, not %d", c.NATSReplicas))
	}
	if c.S3Bucket == "" {
		errs = append(errs, errors.New("S3_BUCKET must not be empty"))
	}
	if u, err := url.Parse(c.MetaBaseURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("META_BASE_URL %q must be an http(s) URL", c.MetaBaseURL))
	}
	if c.MetaAccessToken == "" && len(c.MetaPhoneTokens) == 0 {
		errs = append(errs, errors.New("META_ACCESS_TOKEN or META_PHONE_TOKENS must be set"))
	}
	for phone, token := range c.MetaPhoneTokens {
		if !job.ValidPhoneNumberID(phone) || token == "" {
			errs = append(errs, fmt.Errorf("META_PHONE_TOKENS: entry for %q must be phoneid:token with a digits-only phone number id and a token", phone))
		}
	}
	if c.MetaUploadTimeout <= 0 {
		errs = append(errs, errors.New("META_UPLOAD_TIMEOUT must be positive"))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("WORKER_CONCURRENCY must be between 1 and 256, not %d", c.Concurrency))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("WORKER_ACK_WAIT must be at least 1s, not %v", c.AckWait))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("WORKER_MAX_DELIVER must be at least 1, not %d", c.MaxDeliver))
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		errs = append(errs, errors.New("WORKER_BACKOFF_BASE must be positive and at most WORKER_BACKOFF_MAX"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("WORKER_SHUTDOWN_TIMEOUT must not be negative"))
	}
	if c.MaxInflightPerPhone < 0 {
		errs = append(errs, fmt.Errorf("WORKER_MAX_INFLIGHT_PER_PHONE must not be negative, not %d", c.MaxInflightPerPhone))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("WORKER_METRICS_ADDR %q must be host:port", c.MetricsAddr))
		}
	}
	errs = append(errs, c.validateAsync()...)
	return errors.Join(errs...)
}

// processConfig is the job handler's share of the configuration.
func (c *Config) processConfig() process.Config {
	return process.Config{
		Tokens:      process.Tokens{Default: c.MetaAccessToken, PerPhone: c.MetaPhoneTokens},
		Concurrency: c.Concurrency, AckWait: c.AckWait, MaxDeliver: c.MaxDeliver,
		BackoffBase: c.BackoffBase, BackoffMax: c.BackoffMax, ShutdownTimeout: c.ShutdownTimeout,
		MaxInflightPerPhone: c.MaxInflightPerPhone,
	}
}

// logged is the configuration as the start-up line shows it: secrets are
// masked by their tags, and credentials inside NATS_URL are redacted too.
func (c Config) logged() *Config {
	servers := strings.Split(c.NATSURL, ",")
	for i, s := range servers {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			u.User = url.User("REDACTED") // a user, a password or a bare token
			servers[i] = u.String()
		}
	}
	c.NATSURL = strings.Join(servers, ",")
	return &c
}
