package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Config is everything devstack reads from its environment. Each field's
// default is in its envDefault tag; `devstack env` lists them.
type Config struct {
	// DevAPIKey is accepted by ingest as an API key with messages:send for
	// every phone number id. The default is public: for local use only.
	DevAPIKey string `env:"SIGFOLLOW_DEV_API_KEY" envDefault:"sflo_test_devlocalonly_LocalDevelopmentOnly0NotASecret0" secret:"true"`
	// DevWebhookSecret signs the webhooks of uploads made with DevAPIKey
	// (Standard Webhooks format). The default is public: for local use only.
	DevWebhookSecret string `env:"SIGFOLLOW_DEV_WEBHOOK_SECRET" envDefault:"whsec_c2lnZm9sbG93LWxvY2FsLWRldmVsb3BtZW50LW9ubHk=" secret:"true"`
	// WebhookAllowedCIDRs lets callback URLs reach these otherwise refused
	// ranges, so that a webhook receiver on this machine can be used.
	WebhookAllowedCIDRs string `env:"SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS" envDefault:"127.0.0.0/8,::1/128"`
	// MetaAccessToken is the token the workers present to the Graph API
	// and, unless MetaBaseURL is set, the one the fake Graph API expects.
	MetaAccessToken string `env:"META_ACCESS_TOKEN" envDefault:"dev-meta-token" secret:"true"`
	// MetaPhoneTokens overrides MetaAccessToken for particular phone number
	// ids ("phoneid:token,phoneid:token"), for the workers and the fake.
	MetaPhoneTokens map[string]string `env:"META_PHONE_TOKENS" envSeparator:"," envKeyValSeparator:":" secret:"true"`
	// MetaBaseURL, if set, is the Graph API the workers talk to instead of
	// the fake, which is then not started.
	MetaBaseURL string `env:"META_BASE_URL"`
	// DataDir holds JetStream's store and MinIO's data across runs.
	DataDir string `env:"DEVSTACK_DATA_DIR" envDefault:".cache/devstack"`
	// Workers is how many worker processes to run.
	Workers int `env:"DEVSTACK_WORKERS" envDefault:"2"`
	// NATSAddr is where the embedded NATS server listens.
	NATSAddr string `env:"DEVSTACK_NATS_ADDR" envDefault:"127.0.0.1:4222"`
	// MinIOAddr is where the MinIO server listens.
	MinIOAddr string `env:"DEVSTACK_MINIO_ADDR" envDefault:"127.0.0.1:9000"`
	// FakeGraphAddr is where the fake Graph API listens.
	FakeGraphAddr string `env:"FAKEGRAPH_ADDR" envDefault:"127.0.0.1:8090"`
	// IngestAddr is where ingest's HTTP API listens.
	IngestAddr string `env:"INGEST_ADDR" envDefault:"127.0.0.1:8080"`
	// S3Bucket is the staging bucket ingest creates and the workers read.
	S3Bucket string `env:"S3_BUCKET" envDefault:"sigfollow-staging"`
	// ReadyTimeout bounds the wait for ingest's /readyz after start.
	ReadyTimeout time.Duration `env:"DEVSTACK_READY_TIMEOUT" envDefault:"60s"`
	// StopTimeout is how long each child gets to stop after SIGTERM before
	// it is killed.
	StopTimeout time.Duration `env:"DEVSTACK_STOP_TIMEOUT" envDefault:"30s"`
	// LogLevel (debug, info, warn, error) and LogFormat (text or json)
	// apply to devstack, the fake and every child.
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
}

// listener is one address the stack listens on, with the variable that
// sets it.
type listener struct {
	name, addr, variable string
}

// listeners lists the addresses the stack will listen on.
func (c *Config) listeners() []listener {
	ls := []listener{
		{"NATS", c.NATSAddr, "DEVSTACK_NATS_ADDR"},
		{"MinIO", c.MinIOAddr, "DEVSTACK_MINIO_ADDR"},
		{"ingest", c.IngestAddr, "INGEST_ADDR"},
	}
	if c.fake() {
		ls = append(ls, listener{"fake Graph API", c.FakeGraphAddr, "FAKEGRAPH_ADDR"})
	}
	return ls
}

// fake reports whether the fake Graph API is to be started.
func (c *Config) fake() bool { return c.MetaBaseURL == "" }

func (c *Config) validate() error {
	var errs []error
	if c.DevAPIKey == "" || c.MetaAccessToken == "" {
		errs = append(errs, errors.New("SIGFOLLOW_DEV_API_KEY and META_ACCESS_TOKEN must not be empty"))
	}
	if c.MetaBaseURL != "" {
		if u, err := url.Parse(c.MetaBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("META_BASE_URL %q must be an http(s) URL", c.MetaBaseURL))
		}
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("DEVSTACK_WORKERS must be at least 1, not %d", c.Workers))
	}
	if c.DataDir == "" || c.S3Bucket == "" {
		errs = append(errs, errors.New("DEVSTACK_DATA_DIR and S3_BUCKET must not be empty"))
	}
	if c.ReadyTimeout <= 0 || c.StopTimeout <= 0 {
		errs = append(errs, errors.New("DEVSTACK_READY_TIMEOUT and DEVSTACK_STOP_TIMEOUT must be positive"))
	}
	seen := map[string]string{}
	for _, l := range c.listeners() {
		_, port, err := net.SplitHostPort(l.addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s %q must be host:port with a port from 1 to 65535", l.variable, l.addr))
			continue
		}
		if other, dup := seen[port]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both use port %s", other, l.variable, port))
		}
		seen[port] = l.variable
	}
	return errors.Join(errs...)
}

// dialable turns a listening address into one to connect to: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
