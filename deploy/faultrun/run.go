package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sigfollow/media/shared/localstack"
)

// Config is what a fault run is told by its flags.
type Config struct {
	// Ingest and Worker are the binaries to run (make build puts them in
	// bin/).
	Ingest, Worker string
	// Workers is how many worker processes run at once.
	Workers int
	// Uploads is how many files the clients upload in all; Clients how many
	// upload at once.
	Uploads, Clients int
	// Rounds is how often the fault schedule runs while the load goes on.
	Rounds int
	// MaxDeliver is the workers' WORKER_MAX_DELIVER.
	MaxDeliver int
	// SyncTimeout is ingest's SYNC_TIMEOUT: slower jobs are answered 504.
	SyncTimeout time.Duration
	// Settle bounds the wait for every accepted job to end once the load is
	// done.
	Settle time.Duration
	// Dir holds logs and data; empty uses a new temporary directory,
	// removed after a run without losses or leaks.
	Dir string
}

func parseConfig(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("faultrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	short := fs.Bool("short", false, "the quick version make test runs: fewer uploads, one round of faults")
	fs.StringVar(&c.Ingest, "ingest", "bin/ingest", "ingest binary")
	fs.StringVar(&c.Worker, "worker", "bin/worker", "worker binary")
	fs.IntVar(&c.Workers, "workers", 3, "worker processes")
	fs.IntVar(&c.Uploads, "uploads", 400, "uploads in all")
	fs.IntVar(&c.Clients, "clients", 8, "clients uploading at once")
	fs.IntVar(&c.Rounds, "rounds", 2, "rounds of the fault schedule")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 6, "the workers' WORKER_MAX_DELIVER")
	fs.DurationVar(&c.SyncTimeout, "sync-timeout", 5*time.Second, "ingest's SYNC_TIMEOUT")
	fs.DurationVar(&c.Settle, "settle", 2*time.Minute, "how long accepted jobs may take to end after the load")
	fs.StringVar(&c.Dir, "dir", "", "where logs and data go (default: a temporary directory)")
	if err := fs.Parse(args[1:]); err != nil {
		return Config{}, err
	}
	if *short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["uploads"] {
			c.Uploads = 80
		}
		if !set["workers"] {
			c.Workers = 2
		}
		if !set["clients"] {
			c.Clients = 4
		}
		if !set["rounds"] {
			c.Rounds = 1
		}
	}
	switch {
	case c.Workers < 2:
		return Config{}, errors.New("-workers must be at least 2: one is killed while another carries on")
	case c.Uploads < 1 || c.Clients < 1 || c.Rounds < 1:
		return Config{}, errors.New("-uploads, -clients and -rounds must be positive")
	case c.MaxDeliver < 2:
		return Config{}, errors.New("-max-deliver must be at least 2")
	}
	return c, nil
}

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	minioBin, err := localstack.MinIOBinary(getenv)
	if err != nil {
		return err
	}
	dir, keep := cfg.Dir, cfg.Dir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sigfollow-faultrun-"); err != nil {
			return err
		}
	}
	log.Info("starting the stack", "dir", dir, "workers", cfg.Workers)
	s, err := startStack(ctx, cfg, minioBin, dir, getenv, log)
	if err != nil {
		return fmt.Errorf("start the stack: %w (logs in %s)", err, dir)
	}
	defer s.close()

	start := time.Now()
	faults := make(chan error, 1)
	go func() { faults <- s.injectFaults(ctx) }()
	// The load is paced to last as long as the faults.
	outcomes := s.load(ctx, cfg.Uploads, cfg.Clients, s.schedule().length()*time.Duration(cfg.Rounds))
	if err := <-faults; err != nil {
		return fmt.Errorf("fault schedule: %w (logs in %s)", err, dir)
	}
	log.Info("load done; waiting for accepted jobs to end", "took", time.Since(start).Round(time.Millisecond))

	rep, err := s.reconcile(ctx, outcomes)
	if err != nil {
		return fmt.Errorf("reconcile: %w (logs in %s)", err, dir)
	}
	rep.print(stdout, time.Since(start))
	if rep.Lost > 0 || rep.Leaked > 0 {
		return fmt.Errorf("%d lost, %d leaked (logs in %s)", rep.Lost, rep.Leaked, dir)
	}
	if !keep {
		s.close()
		_ = os.RemoveAll(dir)
	}
	return nil
}
