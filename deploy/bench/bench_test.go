package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/testenv"
)

const repoRoot = "../.."

// TestQuickRun runs `bench -quick` against freshly built binaries and checks
// that the JSON holds every scenario, each with uploads, throughput, no
// failures and the peak RSS of every pipeline process.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole pipeline")
	}
	testenv.MinIOBinary(t) // skips, or fails under CI, without it
	bins := build(t, "ingest", "worker", "deploy/fakegraph")
	out := filepath.Join(t.TempDir(), "results", "quick.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"bench", "-quick", "-out", out,
		"-ingest", bins["ingest"], "-worker", bins["worker"], "-fakegraph", bins["deploy/fakegraph"]}
	if err := run(ctx, args, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("bench -quick: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("results are not JSON: %v\n%s", err, raw)
	}

	q := defaults(true)
	want := map[string]bool{}
	for _, size := range []int64{100000, 1 << 20, 16 << 20} {
		for _, c := range []int{1, 4} {
			want[key(kindDirect, size, c, 0)] = true
			want[key(kindPipeline, size, c, q.workers)] = true
		}
	}
	want[key(kindRepeat, 1<<20, 1, q.workers)] = true
	for _, w := range []int{1, 2} {
		want[key(kindScaling, 100000, q.scaleConc, w)] = true
	}
	for _, s := range r.Scenarios {
		k := key(s.Kind, s.SizeBytes, s.Concurrency, s.Workers)
		if !want[k] {
			t.Errorf("unexpected scenario %s", k)
			continue
		}
		delete(want, k)
		if s.Uploads == 0 || s.UploadsPerS <= 0 || s.MBPerS <= 0 || s.P50MS <= 0 || s.P99MS < s.P50MS {
			t.Errorf("%s: %d uploads, %.1f/s, %.1f MB/s, p50 %.1f ms, p99 %.1f ms; want all positive, p99 ≥ p50",
				k, s.Uploads, s.UploadsPerS, s.MBPerS, s.P50MS, s.P99MS)
		}
		if s.Errors != 0 {
			t.Errorf("%s: %d failed uploads: %v", k, s.Errors, s.ErrorSamples)
		}
		if s.PeakRSS.FakeGraph <= 0 {
			t.Errorf("%s: no peak RSS for the fake Graph API", k)
		}
		if s.Kind != kindDirect && (s.PeakRSS.Ingest <= 0 || len(s.PeakRSS.Workers) != s.Workers) {
			t.Errorf("%s: peak RSS %+v, want ingest's and one per worker (%d)", k, s.PeakRSS, s.Workers)
		}
	}
	for k := range want {
		t.Errorf("scenario %s missing from the results", k)
	}
	if len(r.Comparisons) != 6 {
		t.Errorf("%d comparisons, want one per size and concurrency (6)", len(r.Comparisons))
	}
	if len(r.Targets) != 7 {
		t.Errorf("%d targets, want 7: %+v", len(r.Targets), r.Targets)
	}
	for _, s := range []string{"| size | conc | direct p50", "| worker processes |", "| target | want | got |", out} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, &stdout)
		}
	}
	if !strings.Contains(stderr.String(), "\r") {
		t.Errorf("no progress line on stderr: %q", &stderr)
	}
}

func key(kind string, size int64, conc, workers int) string {
	return fmt.Sprintf("%s/%d/c%d/w%d", kind, size, conc, workers)
}

// build compiles the packages (paths from the repository root) into a
// temporary directory and returns each binary's path by package.
func build(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the pipeline with: %v", err)
	}
	dir := t.TempDir()
	bins := map[string]string{}
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command(goBin, "build", "-o", bin, "./"+pkg)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", pkg, err, out)
		}
		bins[pkg] = bin
	}
	return bins
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(Config) string // what is wrong, or ""
		wantErr string
	}{
		{"defaults", nil, func(c Config) string {
			if len(c.Sizes) != 3 || c.Sizes[2] != 16<<20 || fmt.Sprint(c.Concurrency) != "[1 16 64]" || fmt.Sprint(c.ScaleWorkers) != "[1 2 4]" {
				return fmt.Sprintf("sizes %v, concurrency %v, scale workers %v", c.Sizes, c.Concurrency, c.ScaleWorkers)
			}
			return ""
		}, ""},
		{"quick shrinks the run", []string{"-quick"}, func(c Config) string {
			if fmt.Sprint(c.Concurrency) != "[1 4]" || fmt.Sprint(c.Uploads) != "[6 4 2]" || c.Workers != 1 {
				return fmt.Sprintf("concurrency %v, uploads %v, workers %d", c.Concurrency, c.Uploads, c.Workers)
			}
			return ""
		}, ""},
		{"explicit flags win over quick", []string{"-quick", "-concurrency", "2", "-workers", "3"}, func(c Config) string {
			if fmt.Sprint(c.Concurrency) != "[2]" || c.Workers != 3 {
				return fmt.Sprintf("concurrency %v, workers %d", c.Concurrency, c.Workers)
			}
			return ""
		}, ""},
		{"one count per size", []string{"-uploads", "1,2"}, nil, "one count per size"},
		{"file over the cap", []string{"-sizes", "16777217", "-uploads", "1"}, nil, "file size 16777217"},
		{"file shorter than its stamp", []string{"-sizes", "10", "-uploads", "1"}, nil, "file size 10"},
		{"not a number", []string{"-concurrency", "1,x"}, nil, "-concurrency"},
		{"zero workers", []string{"-scale-workers", "0"}, nil, "-scale-workers must be at least 1"},
		{"inline limit over the cap", []string{"-inline-max-bytes", "600000"}, nil, "-inline-max-bytes must be between 0 and 524288"},
		{"stray argument", []string{"now"}, nil, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("bench", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg, err := parseConfig(tt.args, fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestMissingBinariesNamed(t *testing.T) {
	dir := t.TempDir()
	args := []string{"bench", "-quick", "-ingest", filepath.Join(dir, "ingest"), "-worker", filepath.Join(dir, "worker"),
		"-fakegraph", filepath.Join(dir, "fakegraph")}
	env := map[string]string{"SIGFOLLOW_MINIO_BIN": filepath.Join(dir, "minio")}
	var stdout strings.Builder
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, io.Discard)
	if err == nil {
		t.Fatal("run succeeded without binaries")
	}
	for _, w := range []string{"ingest binary", "worker binary", "fake Graph API binary", "MinIO server binary"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name the %s", err, w)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("printed %q before failing", stdout.String())
	}
}

// TestPayload checks that each upload is a well-formed form whose file has
// the size asked for, is text, and differs from every other upload's.
func TestPayload(t *testing.T) {
	for _, size := range []int64{stampLen, 100000, 1 << 20} {
		t.Run(sizeLabel(size), func(t *testing.T) {
			p := newPayload(size, 42)
			seen := map[string]bool{}
			for i := range 3 {
				body, n := p.body(i)
				raw, err := io.ReadAll(body)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(raw)) != n {
					t.Fatalf("body is %d bytes, length says %d", len(raw), n)
				}
				_, params, err := mime.ParseMediaType(p.contentType)
				if err != nil {
					t.Fatal(err)
				}
				form, err := multipart.NewReader(bytes.NewReader(raw), params["boundary"]).ReadForm(32 << 20)
				if err != nil {
					t.Fatal(err)
				}
				if got := form.Value["messaging_product"]; len(got) != 1 || got[0] != "whatsapp" {
					t.Errorf("messaging_product %q", got)
				}
				fh := form.File["file"][0]
				if fh.Size != size || fh.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("file is %d bytes of %q, want %d of text/plain", fh.Size, fh.Header.Get("Content-Type"), size)
				}
				f, _ := fh.Open()
				data, _ := io.ReadAll(f)
				if i := bytes.IndexFunc(data, func(r rune) bool { return r != '\n' && (r < ' ' || r > '~') }); i >= 0 {
					t.Errorf("byte %d of the file (%q) is not printable text", i, data[i])
				}
				if seen[string(data)] {
					t.Errorf("upload %d repeats an earlier file", i)
				}
				seen[string(data)] = true
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{ds, 50, 50 * time.Millisecond},
		{ds, 99, 99 * time.Millisecond},
		{ds, 100, 100 * time.Millisecond},
		{ds[:1], 99, time.Millisecond},
		{ds[:10], 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("p%.0f of %d values = %v, want %v", tt.p, len(tt.sorted), got, tt.want)
		}
	}
}

// TestTargets judges made-up results against every target.
func TestTargets(t *testing.T) {
	r := &Results{Scenarios: []Scenario{
		{Kind: kindDirect, SizeBytes: 100000, Concurrency: 1, P50MS: 3, P99MS: 5, UploadsPerS: 300},
		{Kind: kindPipeline, SizeBytes: 100000, Concurrency: 1, P50MS: 7, P99MS: 30, UploadsPerS: 140},
		{Kind: kindDirect, SizeBytes: 1 << 20, Concurrency: 16, UploadsPerS: 100},
		{Kind: kindPipeline, SizeBytes: 1 << 20, Concurrency: 16, UploadsPerS: 60},
		{Kind: kindPipeline, SizeBytes: 1 << 20, Concurrency: 1, P50MS: 20},
		{Kind: kindRepeat, SizeBytes: 1 << 20, Concurrency: 1, P50MS: 3},
		{Kind: kindPipeline, SizeBytes: 16 << 20, Concurrency: 64, PeakRSS: rss{Ingest: 120 * mib, Workers: []int64{90 * mib, 170 * mib}}},
		{Kind: kindScaling, Workers: 1, UploadsPerS: 15},
		{Kind: kindScaling, Workers: 4, UploadsPerS: 58},
	}}
	r.compare()
	r.judge(1 << 20)
	want := []string{statusPass, statusMiss, statusPass, statusMiss, statusPass, statusPass, statusPass}
	if len(r.Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(r.Targets), len(want))
	}
	for i, tg := range r.Targets {
		if tg.Status != want[i] {
			t.Errorf("%s: got %s (%s), want %s", tg.Name, tg.Status, tg.Got, want[i])
		}
	}

	empty := &Results{}
	empty.judge(1 << 20)
	for _, tg := range empty.Targets {
		if tg.Status != statusNA {
			t.Errorf("%s with nothing measured: %s, want %s", tg.Name, tg.Status, statusNA)
		}
	}
}
