package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Scenario kinds.
const (
	kindDirect   = "direct"   // posted straight to the fake Graph API
	kindPipeline = "pipeline" // posted to ingest
	kindScaling  = "scaling"  // posted to ingest, the fake Graph API slowed down
	kindRepeat   = "repeat"   // the same file posted to ingest again and again
)

// Results is what a run measured; it is written as the JSON file.
type Results struct {
	Started   time.Time `json:"started"`
	DurationS float64   `json:"duration_s"`
	Quick     bool      `json:"quick"`
	Machine   Machine   `json:"machine"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute load averages when the
	// run started and when it ended: other work on the machine skews the
	// figures.
	LoadAvg [2]string `json:"load_avg"`
	// Workers and WorkerConcurrency shape the pipeline in the size
	// scenarios.
	Workers           int `json:"workers"`
	WorkerConcurrency int `json:"worker_concurrency"`
	// InlineMaxBytes is ingest's INLINE_MAX_BYTES: files up to it travel
	// in their jobs instead of MinIO.
	InlineMaxBytes int64 `json:"inline_max_bytes"`
	// MinIOFS is the file system MinIO's data was on (tmpfs, ext4, …).
	MinIOFS     string       `json:"minio_fs"`
	Scenarios   []Scenario   `json:"scenarios"`
	Comparisons []Comparison `json:"comparisons"`
	Targets     []Target     `json:"targets"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	Go       string `json:"go"`
}

// Scenario is one batch of uploads at one size and concurrency.
type Scenario struct {
	Kind              string   `json:"kind"`
	SizeBytes         int64    `json:"size_bytes"`
	Concurrency       int      `json:"concurrency"`
	Workers           int      `json:"workers,omitempty"`
	WorkerConcurrency int      `json:"worker_concurrency,omitempty"`
	MetaLatencyMS     float64  `json:"meta_latency_ms"`
	Uploads           int      `json:"uploads"`
	Errors            int      `json:"errors"`
	ErrorSamples      []string `json:"error_samples,omitempty"`
	CacheHits         int      `json:"cache_hits"`
	DurationS         float64  `json:"duration_s"`
	P50MS             float64  `json:"p50_ms"`
	P99MS             float64  `json:"p99_ms"`
	MeanMS            float64  `json:"mean_ms"`
	UploadsPerS       float64  `json:"uploads_per_s"`
	MBPerS            float64  `json:"mb_per_s"`
	PeakRSS           rss      `json:"peak_rss"`
	// StagesMS is the mean time of each step of an upload, in ms, as
	// ingest and the workers time them ("ingest.stage", "worker.fetch", …).
	StagesMS map[string]float64 `json:"stages_ms,omitempty"`
	// CPUMSPerUpload is the CPU time each process used per upload, in ms:
	// "ingest", "workers" (all of them), "fakegraph", "minio" and
	// "bench+nats" (the client and the embedded NATS server).
	CPUMSPerUpload map[string]float64 `json:"cpu_ms_per_upload,omitempty"`
}

// rss is the peak resident set size of each process during a scenario.
type rss struct {
	Ingest    int64   `json:"ingest_bytes,omitempty"`
	Workers   []int64 `json:"worker_bytes,omitempty"`
	FakeGraph int64   `json:"fakegraph_bytes"`
}

// maxWorker is the largest worker peak.
func (r rss) maxWorker() int64 {
	if len(r.Workers) == 0 {
		return 0
	}
	return slices.Max(r.Workers)
}

// Comparison sets the pipeline against its floor, the direct uploads, at
// one size and concurrency.
type Comparison struct {
	SizeBytes   int64 `json:"size_bytes"`
	Concurrency int   `json:"concurrency"`
	// AddedP50MS and AddedP99MS are the pipeline's latency percentiles
	// minus the direct ones.
	AddedP50MS float64 `json:"added_p50_ms"`
	AddedP99MS float64 `json:"added_p99_ms"`
	// ThroughputRatio is the pipeline's uploads/s over the direct ones.
	ThroughputRatio float64 `json:"throughput_ratio"`
	// P50Ratio is the pipeline's median latency over the direct one.
	P50Ratio float64 `json:"p50_ratio"`
}

// Target statuses.
const (
	statusPass = "PASS"
	statusMiss = "MISS"
	statusNA   = "n/a" // the run did not measure it
)

// Target is one of the pipeline's performance goals and how the run did.
type Target struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Status string `json:"status"`
}

// measure turns an outcome into a scenario's figures.
func measure(s Scenario, o outcome) Scenario {
	s.Uploads, s.Errors, s.ErrorSamples, s.CacheHits = len(o.latencies)+o.errors, o.errors, o.samples, o.hits
	s.DurationS = o.elapsed.Seconds()
	if n := len(o.latencies); n > 0 {
		s.P50MS = ms(percentile(o.latencies, 50))
		s.P99MS = ms(percentile(o.latencies, 99))
		var sum time.Duration
		for _, d := range o.latencies {
			sum += d
		}
		s.MeanMS = ms(sum / time.Duration(n))
		s.UploadsPerS = float64(n) / o.elapsed.Seconds()
		s.MBPerS = s.UploadsPerS * float64(s.SizeBytes) / 1e6
	}
	return s
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// find returns the scenario of kind at size and concurrency, if run.
func (r *Results) find(kind string, size int64, conc, workers int) (Scenario, bool) {
	for _, s := range r.Scenarios {
		if s.Kind == kind && s.SizeBytes == size && s.Concurrency == conc && (workers == 0 || s.Workers == workers) {
			return s, true
		}
	}
	return Scenario{}, false
}

// compare fills Comparisons from the direct and pipeline scenarios.
func (r *Results) compare() {
	r.Comparisons = nil
	for _, p := range r.Scenarios {
		if p.Kind != kindPipeline {
			continue
		}
		d, ok := r.find(kindDirect, p.SizeBytes, p.Concurrency, 0)
		if !ok {
			continue
		}
		r.Comparisons = append(r.Comparisons, Comparison{
			SizeBytes: p.SizeBytes, Concurrency: p.Concurrency,
			AddedP50MS: p.P50MS - d.P50MS, AddedP99MS: p.P99MS - d.P99MS,
			ThroughputRatio: ratio(p.UploadsPerS, d.UploadsPerS), P50Ratio: ratio(p.P50MS, d.P50MS),
		})
	}
}

func (r *Results) comparison(size int64, conc int) (Comparison, bool) {
	for _, c := range r.Comparisons {
		if c.SizeBytes == size && c.Concurrency == conc {
			return c, true
		}
	}
	return Comparison{}, false
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// The targets' thresholds.
const (
	mib                = 1 << 20
	rssLimit           = 160 * mib
	addedP50Limit      = 5.0  // ms
	addedP99Limit      = 20.0 // ms
	throughputFloor    = 0.5
	scalingFloor       = 3.6
	cacheCeiling       = 0.2
	targetRSSSize      = 16 * mib
	targetRSSConc      = 64
	targetLatencySize  = 100000
	targetThroughSize  = 1 * mib
	targetThroughConc  = 16
	targetScaleWorkers = 4
)

// judge fills Targets.
func (r *Results) judge(repeatSize int64) {
	r.Targets = nil
	add := func(name, want string, got func() (string, bool, bool)) {
		t := Target{Name: name, Want: want, Got: "not measured", Status: statusNA}
		if g, pass, ok := got(); ok {
			t.Got, t.Status = g, statusMiss
			if pass {
				t.Status = statusPass
			}
		}
		r.Targets = append(r.Targets, t)
	}
	rssTarget := func(pick func(rss) int64) func() (string, bool, bool) {
		return func() (string, bool, bool) {
			s, ok := r.find(kindPipeline, targetRSSSize, targetRSSConc, 0)
			if !ok {
				return "", false, false
			}
			v := pick(s.PeakRSS)
			return mibString(v), v <= rssLimit, true
		}
	}
	add("64 concurrent 16 MiB uploads: peak RSS of ingest", "≤ 160 MiB", rssTarget(func(x rss) int64 { return x.Ingest }))
	add("64 concurrent 16 MiB uploads: peak RSS of each worker", "≤ 160 MiB", rssTarget(rss.maxWorker))
	added := func(pick func(Comparison) float64, limit float64) func() (string, bool, bool) {
		return func() (string, bool, bool) {
			c, ok := r.comparison(targetLatencySize, 1)
			if !ok {
				return "", false, false
			}
			v := pick(c)
			return fmt.Sprintf("%.1f ms", v), v <= limit, true
		}
	}
	add("100 KB uploads at concurrency 1: p50 added latency over direct", "≤ 5 ms", added(func(c Comparison) float64 { return c.AddedP50MS }, addedP50Limit))
	add("100 KB uploads at concurrency 1: p99 added latency over direct", "≤ 20 ms", added(func(c Comparison) float64 { return c.AddedP99MS }, addedP99Limit))
	add("1 MiB uploads at concurrency 16: pipeline throughput / direct", "≥ 50%", func() (string, bool, bool) {
		c, ok := r.comparison(targetThroughSize, targetThroughConc)
		if !ok {
			return "", false, false
		}
		return fmt.Sprintf("%.0f%%", 100*c.ThroughputRatio), c.ThroughputRatio >= throughputFloor, true
	})
	add("250 ms Meta latency: throughput of 4 worker processes / 1", "≥ 3.6×", func() (string, bool, bool) {
		v, ok := r.scaling(targetScaleWorkers)
		return fmt.Sprintf("%.2f×", v), v >= scalingFloor, ok
	})
	add(fmt.Sprintf("media-id cache hit / cold upload (%s, p50)", sizeLabel(repeatSize)), "< 1/5", func() (string, bool, bool) {
		hit, ok := r.find(kindRepeat, repeatSize, 1, 0)
		cold, ok2 := r.find(kindPipeline, repeatSize, 1, 0)
		if !ok || !ok2 || cold.P50MS == 0 {
			return "", false, false
		}
		v := hit.P50MS / cold.P50MS
		return fmt.Sprintf("%.2f (%.1f ms / %.1f ms)", v, hit.P50MS, cold.P50MS), v < cacheCeiling, true
	})
}

// scaling returns the throughput with n worker processes over that with
// one, in the scaling scenario.
func (r *Results) scaling(n int) (float64, bool) {
	rate := func(workers int) float64 {
		for _, s := range r.Scenarios {
			if s.Kind == kindScaling && s.Workers == workers {
				return s.UploadsPerS
			}
		}
		return 0
	}
	one, many := rate(1), rate(n)
	if one == 0 || many == 0 {
		return 0, false
	}
	return many / one, true
}

// failed counts the failed uploads of every scenario.
func (r *Results) failed() int {
	n := 0
	for _, s := range r.Scenarios {
		n += s.Errors
	}
	return n
}

// writeTables prints the results as markdown tables.
func (r *Results) writeTables(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "Machine: %d CPUs (%s), %s RAM, %s, %s, Linux %s. Pipeline: ingest (INLINE_MAX_BYTES=%d) + %d worker processes × WORKER_CONCURRENCY=%d; MinIO's data on %s. Load average %s at the start, %s at the end.\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Go, r.Machine.OS, r.Machine.Kernel, r.InlineMaxBytes, r.Workers, r.WorkerConcurrency, r.MinIOFS, r.LoadAvg[0], r.LoadAvg[1])

	b.WriteString("| size | conc | direct p50 | direct p99 | direct up/s | direct MB/s | pipeline p50 | pipeline p99 | pipeline up/s | pipeline MB/s | added p50 | added p99 | up/s ratio | RSS ingest | RSS workers |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.Scenarios {
		if p.Kind != kindPipeline {
			continue
		}
		d, _ := r.find(kindDirect, p.SizeBytes, p.Concurrency, 0)
		c, _ := r.comparison(p.SizeBytes, p.Concurrency)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %.1f | %.1f | %s | %s | %.1f | %.1f | %+.1f ms | %+.1f ms | %.0f%% | %s | %s |\n",
			sizeLabel(p.SizeBytes), p.Concurrency, msString(d.P50MS), msString(d.P99MS), d.UploadsPerS, d.MBPerS,
			msString(p.P50MS), msString(p.P99MS), p.UploadsPerS, p.MBPerS,
			c.AddedP50MS, c.AddedP99MS, 100*c.ThroughputRatio, mibString(p.PeakRSS.Ingest), workersString(p.PeakRSS.Workers))
	}

	writeStages(b, r.Scenarios)
	writeCPU(b, r.Scenarios)

	var scaling []Scenario
	for _, s := range r.Scenarios {
		if s.Kind == kindScaling {
			scaling = append(scaling, s)
		}
	}
	if len(scaling) > 0 {
		s0 := scaling[0]
		fmt.Fprintf(b, "\nScaling: fake Graph API latency %.0f ms, %s files, client concurrency %d, WORKER_CONCURRENCY=%d per process.\n\n",
			s0.MetaLatencyMS, sizeLabel(s0.SizeBytes), s0.Concurrency, s0.WorkerConcurrency)
		b.WriteString("| worker processes | up/s | MB/s | p50 | p99 | × 1 process | RSS ingest | RSS workers |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range scaling {
			x, _ := r.scaling(s.Workers)
			fmt.Fprintf(b, "| %d | %.1f | %.1f | %s | %s | %.2f× | %s | %s |\n", s.Workers, s.UploadsPerS, s.MBPerS,
				msString(s.P50MS), msString(s.P99MS), x, mibString(s.PeakRSS.Ingest), workersString(s.PeakRSS.Workers))
		}
	}
	for _, s := range r.Scenarios {
		if s.Kind == kindRepeat {
			fmt.Fprintf(b, "\nThe same %s file again, %d times at concurrency 1: p50 %s, p99 %s; %d answered from the media-id cache.\n",
				sizeLabel(s.SizeBytes), s.Uploads, msString(s.P50MS), msString(s.P99MS), s.CacheHits)
		}
	}

	b.WriteString("\n| target | want | got | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, t.Status)
	}
	if n := r.failed(); n > 0 {
		fmt.Fprintf(b, "\n%d uploads failed:\n", n)
		for _, s := range r.Scenarios {
			for _, e := range s.ErrorSamples {
				fmt.Fprintf(b, "- %s %s c=%d: %s\n", s.Kind, sizeLabel(s.SizeBytes), s.Concurrency, e)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stageOrder is the order of the steps of an upload in the stage table;
// steps not listed follow in alphabetical order.
const stageOrder = "ingest.receive ingest.cache ingest.stage ingest.publish ingest.wait worker.queued worker.lookup worker.fetch worker.meta_upload worker.settle worker.total"

// writeStages prints where the pipeline's time went, per scenario, if the
// processes timed their steps.
func writeStages(b *strings.Builder, scenarios []Scenario) {
	seen := map[string]bool{}
	for _, s := range scenarios {
		if s.Kind == kindPipeline {
			for k := range s.StagesMS {
				seen[k] = true
			}
		}
	}
	if len(seen) == 0 {
		return
	}
	var cols []string
	for _, k := range strings.Fields(stageOrder) {
		if seen[k] {
			cols = append(cols, k)
			delete(seen, k)
		}
	}
	rest := slices.Sorted(maps.Keys(seen))
	cols = append(cols, rest...)
	b.WriteString("\nMean time of each step of a pipeline upload, as ingest and the workers time them:\n\n| size | conc |")
	for _, c := range cols {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n|---|--:|" + strings.Repeat("--:|", len(cols)) + "\n")
	for _, s := range scenarios {
		if s.Kind != kindPipeline {
			continue
		}
		fmt.Fprintf(b, "| %s | %d |", sizeLabel(s.SizeBytes), s.Concurrency)
		for _, c := range cols {
			if v, ok := s.StagesMS[c]; ok {
				b.WriteString(" " + msString(v) + " |")
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
}

// cpuOrder is the order of the processes in the CPU table.
const cpuOrder = "ingest workers minio fakegraph bench+nats"

// writeCPU prints the CPU time each process used per upload.
func writeCPU(b *strings.Builder, scenarios []Scenario) {
	procs := strings.Fields(cpuOrder)
	b.WriteString("\nCPU time per upload (ms), by process; bench+nats is the client and the embedded NATS server:\n\n| scenario | size | conc |")
	for _, p := range procs {
		b.WriteString(" " + p + " |")
	}
	b.WriteString(" total |\n|---|---|--:|" + strings.Repeat("--:|", len(procs)+1) + "\n")
	for _, s := range scenarios {
		if s.Kind != kindDirect && s.Kind != kindPipeline {
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %d |", s.Kind, sizeLabel(s.SizeBytes), s.Concurrency)
		var total float64
		for _, p := range procs {
			v, ok := s.CPUMSPerUpload[p]
			total += v
			if ok {
				fmt.Fprintf(b, " %.2f |", v)
			} else {
				b.WriteString(" – |")
			}
		}
		fmt.Fprintf(b, " %.2f |\n", total)
	}
}

// writeJSON writes the results to path, creating its directory.
func (r *Results) writeJSON(path string) error {
	if dir := dirOf(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return ""
}

func sizeLabel(n int64) string {
	switch {
	case n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n%1000 == 0:
		return fmt.Sprintf("%d KB", n/1000)
	}
	return fmt.Sprintf("%d B", n)
}

func msString(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func mibString(n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/mib)
}

func workersString(ns []int64) string {
	if len(ns) == 0 {
		return "–"
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%.0f", float64(n)/mib)
	}
	return strings.Join(parts, " / ") + " MiB"
}

// machine describes this machine from /proc and the runtime.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"); kb != "" {
		var n float64
		if _, err := fmt.Sscan(kb, &n); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", n/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// fsType returns the type of the file system path is on, from
// /proc/self/mounts: the mount point that is path's longest prefix.
func fsType(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := -1, "unknown"
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mount := f[1]
		if (path == mount || strings.HasPrefix(path, strings.TrimSuffix(mount, "/")+"/")) && len(mount) > best {
			best, typ = len(mount), f[2]
		}
	}
	return typ
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "name: value" line in file.
func procField(file, name string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
