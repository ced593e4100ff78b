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
	"syscall"
	"time"

	"github.com/sigfollow/media/shared/envconfig"
	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/logging"
)

const usage = `usage:
  fakegraph        serve the fake Graph API (configured by environment variables)
  fakegraph env    list the environment variables fakegraph reads
`

// Config is everything fakegraph reads from its environment. Each field's
// default is in its envDefault tag; `fakegraph env` lists them.
type Config struct {
	// Addr is where the fake listens.
	Addr string `env:"FAKEGRAPH_ADDR" envDefault:"127.0.0.1:8090"`
	// Token is the access token uploads must present, as they would to
	// Meta; the workers' META_ACCESS_TOKEN must match it.
	Token string `env:"META_ACCESS_TOKEN" envDefault:"dev-meta-token" secret:"true"`
	// PhoneTokens overrides Token for particular phone number ids, written
	// as the workers read it: "phoneid:token,phoneid:token".
	PhoneTokens map[string]string `env:"META_PHONE_TOKENS" envSeparator:"," envKeyValSeparator:":" secret:"true"`
	// Latency is added to every upload before it is answered; PUT
	// /_fake/latency changes it while running.
	Latency time.Duration `env:"FAKEGRAPH_LATENCY" envDefault:"0s"`
	// BaseURL is the fake's own URL as clients reach it, used in media
	// download links. Empty means http://<listening address> when Addr
	// names a host, else the Host of each request.
	BaseURL string `env:"FAKEGRAPH_BASE_URL"`
	// ShutdownTimeout bounds finishing in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `env:"FAKEGRAPH_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

func (c *Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("FAKEGRAPH_ADDR %q must be host:port: %w", c.Addr, err))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("META_ACCESS_TOKEN must not be empty"))
	}
	if c.Latency < 0 {
		errs = append(errs, errors.New("FAKEGRAPH_LATENCY must not be negative"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("FAKEGRAPH_SHUTDOWN_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
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
	cmd := ""
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "", "serve":
		return serve(ctx, cfg, stderr)
	case "env":
		return envconfig.Print(stdout, &cfg)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// serve runs the fake until ctx is done or SIGINT/SIGTERM arrives, then
// finishes in-flight requests. It logs "listening" with the bound address
// once it accepts connections.
func serve(ctx context.Context, cfg Config, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log, err := logging.New(stderr, "fakegraph", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log.Info("starting", "config", envconfig.LogValue(&cfg))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set FAKEGRAPH_ADDR to another host:port): %w", cfg.Addr, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	base := cfg.BaseURL
	if base == "" && !addr.IP.IsUnspecified() {
		base = "http://" + addr.String()
	}
	fake := fakegraph.New(fakegraph.Config{
		Token: cfg.Token, PhoneTokens: cfg.PhoneTokens, Latency: cfg.Latency,
		BaseURL: base, Logger: log,
	})
	hs := &http.Server{
		Handler:           fake,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", addr.String(), "base_url", base)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
