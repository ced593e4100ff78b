package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigfollow/media/shared/job"
)

// Config is everything bench reads: its flags. Each default is beside the
// flag's definition in parseConfig; -quick replaces the defaults of the
// flags that size the run with a smoke run's, and flags given explicitly
// still win.
type Config struct {
	// IngestBin, WorkerBin and FakeGraphBin are the binaries to run;
	// `make build` builds them.
	IngestBin, WorkerBin, FakeGraphBin string
	// Out is the JSON results file; empty means
	// bench-results/<start time>.json.
	Out string
	// Quick is a smoke run of a few seconds: the same scenarios with tiny
	// counts, low concurrency and fewer worker processes.
	Quick bool

	// Sizes are the file sizes in bytes; Uploads the measured uploads per
	// scenario for each size (at least twice the concurrency are made).
	Sizes   []int64
	Uploads []int
	// Concurrency lists the client concurrencies of the size scenarios.
	Concurrency []int
	// Workers and WorkerConcurrency shape the pipeline of the size
	// scenarios: processes, and uploads in flight per process.
	Workers           int
	WorkerConcurrency int

	// ScaleWorkers lists the worker process counts of the scaling
	// scenario; ScaleLatency is the fake Graph API's latency there,
	// ScaleRounds the rounds of uploads per step (a round fills every
	// worker slot once), ScaleConcurrency the client's concurrency and
	// ScaleSize the file size.
	ScaleWorkers     []int
	ScaleLatency     time.Duration
	ScaleRounds      int
	ScaleConcurrency int
	ScaleSize        int64

	// RepeatUploads is how many times the cache scenario uploads one file
	// again; RepeatSize is that file's size.
	RepeatUploads int
	RepeatSize    int64

	// SyncTimeout is ingest's SYNC_TIMEOUT; the client gives every request
	// 30 s more.
	SyncTimeout time.Duration
	// InlineMaxBytes is ingest's INLINE_MAX_BYTES: 0 stages every file in
	// MinIO.
	InlineMaxBytes int64
	// MinIODir is where MinIO keeps its data (in a directory of its own
	// made there); empty means the run's temporary directory.
	MinIODir string
	// ProfileDir, if set, receives CPU profiles of ingest and the first
	// worker, ProfileSeconds long, taken during each pipeline scenario's
	// measured uploads.
	ProfileDir     string
	ProfileSeconds int
}

// sizing is one set of defaults for the flags that size the run.
type sizing struct {
	uploads, concurrency, scaleWorkers string
	workers, scaleRounds, scaleConc    int
	repeatUploads                      int
}

// defaults returns the full run's sizing, or the smoke run's.
func defaults(quick bool) sizing {
	if quick {
		return sizing{uploads: "6,4,2", concurrency: "1,4", scaleWorkers: "1,2", workers: 1,
			scaleRounds: 2, scaleConc: 16, repeatUploads: 4}
	}
	return sizing{uploads: "600,300,96", concurrency: "1,16,64", scaleWorkers: "1,2,4", workers: 2,
		scaleRounds: 30, scaleConc: 64, repeatUploads: 100}
}

// parseConfig reads the flags in args (without the program name).
func parseConfig(args []string, fs *flag.FlagSet) (Config, error) {
	var cfg Config
	var sizes, uploads, conc, scaleWorkers string
	full := defaults(false)
	fs.StringVar(&cfg.IngestBin, "ingest", "./bin/ingest", "the ingest `binary`")
	fs.StringVar(&cfg.WorkerBin, "worker", "./bin/worker", "the worker `binary`")
	fs.StringVar(&cfg.FakeGraphBin, "fakegraph", "./bin/fakegraph", "the fake Graph API `binary`")
	fs.StringVar(&cfg.Out, "out", "", "write the results as JSON to `file` (default bench-results/<start time>.json)")
	fs.BoolVar(&cfg.Quick, "quick", false, "a smoke run of a few seconds: tiny counts, low concurrency")
	fs.StringVar(&sizes, "sizes", "100000,1048576,16777216", "file `sizes` in bytes, comma-separated")
	fs.StringVar(&uploads, "uploads", full.uploads, "measured uploads per scenario for each size, comma-separated (`counts`)")
	fs.StringVar(&conc, "concurrency", full.concurrency, "client `concurrencies`, comma-separated")
	fs.IntVar(&cfg.Workers, "workers", full.workers, "worker `processes` in the size scenarios")
	fs.IntVar(&cfg.WorkerConcurrency, "worker-concurrency", 4, "WORKER_CONCURRENCY of every worker `process`")
	fs.StringVar(&scaleWorkers, "scale-workers", full.scaleWorkers, "worker process `counts` of the scaling scenario")
	fs.DurationVar(&cfg.ScaleLatency, "scale-latency", 250*time.Millisecond, "fake Graph API `latency` in the scaling scenario")
	fs.IntVar(&cfg.ScaleRounds, "scale-rounds", full.scaleRounds, "rounds of uploads per step of the scaling scenario: each step makes `n` × its worker slots uploads (at least twice -scale-concurrency)")
	fs.IntVar(&cfg.ScaleConcurrency, "scale-concurrency", full.scaleConc, "client concurrency of the scaling scenario")
	fs.Int64Var(&cfg.ScaleSize, "scale-size", 100000, "file size in the scaling scenario, in `bytes`")
	fs.IntVar(&cfg.RepeatUploads, "repeat-uploads", full.repeatUploads, "uploads of one same file in the cache scenario")
	fs.Int64Var(&cfg.RepeatSize, "repeat-size", 1048576, "file size in the cache scenario, in `bytes`")
	fs.StringVar(&cfg.MinIODir, "minio-dir", "", "keep MinIO's data under `dir` (default: the run's temporary directory)")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write CPU profiles of ingest and the first worker for each pipeline scenario to `dir` (go tool pprof reads them)")
	fs.IntVar(&cfg.ProfileSeconds, "profile-seconds", 10, "length of each CPU profile, in `seconds` (keep it under the scenario's)")
	fs.Int64Var(&cfg.InlineMaxBytes, "inline-max-bytes", job.DefaultInlineMaxBytes, "ingest's INLINE_MAX_BYTES (`bytes`): files up to it travel in their jobs; 0 stages every file in MinIO")
	fs.DurationVar(&cfg.SyncTimeout, "sync-timeout", 2*time.Minute, "ingest's SYNC_TIMEOUT (`duration`); the client gives every request 30 s more")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (try -h)", fs.Arg(0))
	}
	if cfg.Quick {
		quick := defaults(true)
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		unlessSet(set, "uploads", &uploads, quick.uploads)
		unlessSet(set, "concurrency", &conc, quick.concurrency)
		unlessSet(set, "scale-workers", &scaleWorkers, quick.scaleWorkers)
		unlessSet(set, "workers", &cfg.Workers, quick.workers)
		unlessSet(set, "scale-rounds", &cfg.ScaleRounds, quick.scaleRounds)
		unlessSet(set, "scale-concurrency", &cfg.ScaleConcurrency, quick.scaleConc)
		unlessSet(set, "repeat-uploads", &cfg.RepeatUploads, quick.repeatUploads)
	}
	var errs []error
	var err error
	if cfg.Sizes, err = parseList(sizes, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		errs = append(errs, fmt.Errorf("-sizes: %w", err))
	}
	if cfg.Uploads, err = parseList(uploads, strconv.Atoi); err != nil {
		errs = append(errs, fmt.Errorf("-uploads: %w", err))
	}
	if cfg.Concurrency, err = parseList(conc, strconv.Atoi); err != nil {
		errs = append(errs, fmt.Errorf("-concurrency: %w", err))
	}
	if cfg.ScaleWorkers, err = parseList(scaleWorkers, strconv.Atoi); err != nil {
		errs = append(errs, fmt.Errorf("-scale-workers: %w", err))
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, cfg.validate()
}

// unlessSet sets *p to v unless the flag name was given.
func unlessSet[T any](set map[string]bool, name string, p *T, v T) {
	if !set[name] {
		*p = v
	}
}

func parseList[T int | int64](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of whole numbers", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// maxFileSize is the largest file the pipeline accepts (16 MiB).
const maxFileSize = 16 << 20

func (c *Config) validate() error {
	var errs []error
	positive := func(name string, vs ...int) {
		for _, v := range vs {
			if v < 1 {
				errs = append(errs, fmt.Errorf("%s must be at least 1, not %d", name, v))
			}
		}
	}
	positive("-uploads", c.Uploads...)
	positive("-concurrency", c.Concurrency...)
	positive("-scale-workers", c.ScaleWorkers...)
	positive("-workers", c.Workers)
	positive("-worker-concurrency", c.WorkerConcurrency)
	positive("-scale-rounds", c.ScaleRounds)
	positive("-scale-concurrency", c.ScaleConcurrency)
	positive("-repeat-uploads", c.RepeatUploads)
	if len(c.Uploads) != len(c.Sizes) {
		errs = append(errs, fmt.Errorf("-uploads needs one count per size: %d sizes, %d counts", len(c.Sizes), len(c.Uploads)))
	}
	for _, s := range append(slices.Clone(c.Sizes), c.ScaleSize, c.RepeatSize) {
		if s < minFileSize || s > maxFileSize {
			errs = append(errs, fmt.Errorf("file size %d must be from %d to %d bytes", s, minFileSize, maxFileSize))
		}
	}
	if c.ProfileDir != "" && c.ProfileSeconds < 1 {
		errs = append(errs, fmt.Errorf("-profile-seconds must be at least 1, not %d", c.ProfileSeconds))
	}
	if c.InlineMaxBytes < 0 || c.InlineMaxBytes > job.MaxInlineBytes {
		errs = append(errs, fmt.Errorf("-inline-max-bytes must be between 0 and %d", job.MaxInlineBytes))
	}
	if c.ScaleLatency < 0 || c.SyncTimeout <= 0 {
		errs = append(errs, errors.New("-scale-latency must not be negative and -sync-timeout must be positive"))
	}
	return errors.Join(errs...)
}
