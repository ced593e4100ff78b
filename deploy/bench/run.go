package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sigfollow/media/shared/localstack"
)

const usage = `usage: bench [flags]

Runs the media pipeline (NATS, MinIO, the fake Graph API, ingest, workers)
on this machine and measures it against the same uploads posted straight to
the fake Graph API. Prints markdown tables and writes the results as JSON.

flags:
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if len(args) > 0 {
		args = args[1:]
	}
	cfg, err := parseConfig(args, fs)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	minioBin, err := localstack.MinIOBinary(getenv)
	if err != nil {
		return err
	}
	if err := preflight(cfg, minioBin); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	started := time.Now()
	if cfg.Out == "" {
		cfg.Out = filepath.Join("bench-results", started.UTC().Format("20060102T150405Z")+".json")
	}
	dir, err := os.MkdirTemp(getenv("TMPDIR"), "sigfollow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := startStack(ctx, cfg, minioBin, dir, getenv)
	if err != nil {
		return err
	}
	defer st.close()

	b := &bench{
		cfg: cfg, stack: st, load: newLoader(cfg.SyncTimeout + 30*time.Second), progress: &progress{w: stderr},
		results: &Results{Started: started.UTC(), Quick: cfg.Quick, Machine: machine(), LoadAvg: [2]string{loadAvg()},
			Workers: cfg.Workers, WorkerConcurrency: cfg.WorkerConcurrency, InlineMaxBytes: cfg.InlineMaxBytes},
		run: runID(),
	}
	b.results.MinIOFS = fsType(st.minioDir)
	steps := b.plan()
	for i, s := range steps {
		b.progress.step = fmt.Sprintf("[%2d/%d] %s", i+1, len(steps), s.label)
		if err := s.do(ctx); err != nil {
			b.progress.end("failed")
			return fmt.Errorf("%s: %w (logs of the pipeline processes: %s)", s.label, err, filepath.Join(dir, "logs"))
		}
	}

	r := b.results
	r.DurationS = time.Since(started).Seconds()
	r.LoadAvg[1] = loadAvg()
	r.compare()
	r.judge(cfg.RepeatSize)
	if err := r.writeTables(stdout); err != nil {
		return err
	}
	if err := r.writeJSON(cfg.Out); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	fmt.Fprintf(stdout, "\nResults written to %s (%.0f s).\n", cfg.Out, r.DurationS)
	if n := r.failed(); n > 0 {
		return fmt.Errorf("%d uploads failed", n)
	}
	return nil
}

// preflight fails fast, naming every binary that is missing.
func preflight(cfg Config, minioBin string) error {
	var errs []error
	for _, b := range []struct{ path, what string }{
		{cfg.IngestBin, "ingest binary (-ingest flag; `make build` builds it)"},
		{cfg.WorkerBin, "worker binary (-worker flag; `make build` builds it)"},
		{cfg.FakeGraphBin, "fake Graph API binary (-fakegraph flag; `make build` builds it)"},
		{minioBin, "MinIO server binary (`make tools` installs it; SIGFOLLOW_MINIO_BIN overrides its path)"},
	} {
		if st, err := os.Stat(b.path); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("%s: not found at %s", b.what, b.path))
		}
	}
	return errors.Join(errs...)
}

// bench is one run's state.
type bench struct {
	cfg      Config
	stack    *stack
	load     *loader
	progress *progress
	results  *Results
	run      uint64 // in every file's stamp
	next     int    // the number of the next file, so that every file differs
}

// step is one part of the run.
type step struct {
	label string
	do    func(ctx context.Context) error
}

// plan lists the run's steps: for each size and concurrency the direct
// uploads then the same through the pipeline, then the same file again
// and again, then the scaling scenario.
func (b *bench) plan() []step {
	var steps []step
	for i, size := range b.cfg.Sizes {
		p := newPayload(size, b.run)
		for _, c := range b.cfg.Concurrency {
			n := max(b.cfg.Uploads[i], 2*c)
			base := Scenario{SizeBytes: size, Concurrency: c}
			direct, pipe := base, base
			direct.Kind = kindDirect
			pipe.Kind, pipe.Workers, pipe.WorkerConcurrency = kindPipeline, b.cfg.Workers, b.cfg.WorkerConcurrency
			steps = append(steps,
				step{label(direct), func(ctx context.Context) error { return b.scenario(ctx, direct, p, n) }},
				step{label(pipe), func(ctx context.Context) error { return b.scenario(ctx, pipe, p, n) }},
			)
		}
	}
	rep := Scenario{Kind: kindRepeat, SizeBytes: b.cfg.RepeatSize, Concurrency: 1,
		Workers: b.cfg.Workers, WorkerConcurrency: b.cfg.WorkerConcurrency}
	rp := newPayload(b.cfg.RepeatSize, b.run)
	steps = append(steps, step{label(rep), func(ctx context.Context) error { return b.scenario(ctx, rep, rp, b.cfg.RepeatUploads) }})

	sp := newPayload(b.cfg.ScaleSize, b.run)
	for _, w := range b.cfg.ScaleWorkers {
		s := Scenario{Kind: kindScaling, SizeBytes: b.cfg.ScaleSize, Concurrency: b.cfg.ScaleConcurrency,
			Workers: w, WorkerConcurrency: b.cfg.WorkerConcurrency, MetaLatencyMS: ms(b.cfg.ScaleLatency)}
		// As many rounds for every step, so that filling the pipeline at
		// the start and draining it at the end weigh the same in each.
		n := max(b.cfg.ScaleRounds*w*b.cfg.WorkerConcurrency, 2*b.cfg.ScaleConcurrency)
		steps = append(steps, step{label(s), func(ctx context.Context) error { return b.scenario(ctx, s, sp, n) }})
	}
	return steps
}

func label(s Scenario) string {
	l := fmt.Sprintf("%s %s c=%d", s.Kind, sizeLabel(s.SizeBytes), s.Concurrency)
	if s.Kind != kindDirect {
		l += fmt.Sprintf(" (%d×%d workers)", s.Workers, s.WorkerConcurrency)
	}
	if s.MetaLatencyMS > 0 {
		l += fmt.Sprintf(" Meta +%.0f ms", s.MetaLatencyMS)
	}
	return l
}

// scenario runs one scenario: it starts the pipeline processes afresh
// (unless the uploads go straight to the fake), warms the connections up,
// posts n uploads and records what they measured with each process's peak
// RSS.
func (b *bench) scenario(ctx context.Context, s Scenario, p *payload, n int) error {
	st := b.stack
	b.load.closeIdle()
	if err := st.setLatency(ctx, time.Duration(s.MetaLatencyMS*float64(time.Millisecond))); err != nil {
		return err
	}
	e := endpoint{prefix: st.fakeURL + "/" + graphVersion + "/", token: benchMetaToken}
	if s.Kind != kindDirect {
		if err := st.startPipeline(ctx, s.Workers, s.WorkerConcurrency); err != nil {
			return err
		}
		defer st.stopPipeline()
		e = endpoint{prefix: st.ingestURL + "/v1/", token: benchDevKey}
	}
	if err := st.resetFake(ctx); err != nil {
		return err
	}

	// Warm up: connections, pools and caches, with files of their own.
	warm := max(2, min(s.Concurrency, 8))
	b.progress.show("warming up")
	o := b.load.run(ctx, e, p, b.take(warm), warm, warm, false, func(int, int) {})
	if o.errors > 0 {
		return fmt.Errorf("warming up: %d of %d uploads failed: %s", o.errors, warm, strings.Join(o.samples, "; "))
	}
	same := s.Kind == kindRepeat
	var first int
	if !same {
		first = b.take(n)
	} else {
		// The repeated file's first upload is a cold one, not measured.
		first = b.take(1)
		if o := b.load.run(ctx, e, p, first, 1, 1, false, func(int, int) {}); o.errors > 0 {
			return fmt.Errorf("first upload of the repeated file failed: %s", strings.Join(o.samples, "; "))
		}
	}
	before, cpuBefore := st.stageTimes(ctx), st.cpuTimes()
	profiled := func() error { return nil }
	if s.Kind != kindDirect {
		profiled = st.profile(ctx, profileLabel(s))
	}
	start := time.Now()
	o = b.load.run(ctx, e, p, first, n, s.Concurrency, same, func(done, failed int) {
		rate := float64(done-failed) / time.Since(start).Seconds()
		b.progress.show(fmt.Sprintf("%d/%d uploads, %d failed, %.1f uploads/s", done, n, failed, rate))
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := st.alive(); err != nil {
		return err
	}
	if err := profiled(); err != nil {
		return err
	}
	peaks, err := st.peaks()
	if err != nil {
		return err
	}
	s = measure(s, o)
	s.PeakRSS = peaks
	s.StagesMS = st.stageTimes(ctx).meansSince(before)
	s.CPUMSPerUpload = cpuPerUpload(cpuBefore, st.cpuTimes(), s.Uploads)
	b.results.Scenarios = append(b.results.Scenarios, s)
	b.progress.end(fmt.Sprintf("%d uploads, %d failed, p50 %s, p99 %s, %.1f uploads/s, %.1f MB/s",
		s.Uploads, s.Errors, msString(s.P50MS), msString(s.P99MS), s.UploadsPerS, s.MBPerS))
	return nil
}

// cpuPerUpload is each process's CPU time between before and after, in
// milliseconds per upload.
func cpuPerUpload(before, after map[string]time.Duration, uploads int) map[string]float64 {
	if uploads == 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range after {
		out[k] = ms(v-before[k]) / float64(uploads)
	}
	return out
}

// take reserves n file numbers.
func (b *bench) take(n int) int {
	first := b.next
	b.next += n
	return first
}

// progress keeps one status line up to date on a terminal.
type progress struct {
	w     io.Writer
	step  string
	width int // of the last line written, to blank it out
}

// show rewrites the line.
func (p *progress) show(status string) {
	line := p.step + ": " + status
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// end rewrites the line a last time and moves on to the next.
func (p *progress) end(status string) {
	p.show(status)
	fmt.Fprintln(p.w)
	p.width = 0
}

// profileLabel names a scenario's profile files: kind, size and
// concurrency, then the workers.
func profileLabel(s Scenario) string {
	return fmt.Sprintf("%s-%d-c%d-w%d", s.Kind, s.SizeBytes, s.Concurrency, s.Workers)
}
