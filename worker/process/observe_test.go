package process_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
	"github.com/sigfollow/media/shared/tracing"
	"github.com/sigfollow/media/worker/process"
)

// observed is a processor with a span recorder and its own metrics
// registry.
type observed struct {
	spans *tracetest.SpanRecorder
	reg   *prometheus.Registry
}

func (e *env) startObserved(t *testing.T) *observed {
	t.Helper()
	o := &observed{spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	o.reg.MustRegister(process.NewQueueCollector(e.cons))
	p, err := process.New(e.config(), process.Deps{
		Graph: e.graph, Store: e.store, Results: e.topo.Results, Conn: e.nc,
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Metrics: process.NewMetrics(o.reg), Tracing: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, e.cons); close(done) }()
	t.Cleanup(sync.OnceFunc(func() { cancel(); <-done }))
	return o
}

// TestTraceContextReachesTheWorker: a job published with a traceparent (as
// ingest publishes it) is worked on in a span of the same trace, a child of
// the publishing span.
func TestTraceContextReachesTheWorker(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	o := e.startObserved(t)
	j := e.stage(t, "5551234", "image/jpeg", fixture(t, "image.jpg"))

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	data, _ := json.Marshal(j)
	msg := nats.NewMsg(job.Subject(j.PhoneNumberID))
	msg.Data = data
	tracing.Inject(parent, msg.Header)
	if msg.Header.Get("traceparent") == "" {
		t.Fatal("no traceparent header injected")
	}
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}

	e.assertDrained(t)
	// The span ends just after the ack.
	testenv.Eventually(t, waitFor, func() bool { return len(o.spans.Ended()) > 0 }, "the job's span did not end")
	spans := o.spans.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	if got := spans[0].SpanContext().TraceID(); got != traceID {
		t.Errorf("worker span in trace %s, want %s", got, traceID)
	}
	if got := spans[0].Parent().SpanID(); got != spanID {
		t.Errorf("worker span's parent %s, want the publisher's %s", got, spanID)
	}
}

// TestWorkerMetrics: a succeeded job and a Meta error are counted, and the
// queue collector reports the consumer's backlog.
func TestWorkerMetrics(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	o := e.startObserved(t)
	e.fake.InjectFault(fakegraph.Fault{Kind: "5xx", Count: 1})
	j := e.stage(t, "5551234", "image/jpeg", fixture(t, "image.jpg"))
	if r := await(t, e.publish(t, j, j.ID)); r.Status != job.StatusSucceeded {
		t.Fatalf("result %+v", r)
	}
	e.assertDrained(t)

	want := `
# HELP sigfollow_worker_jobs_total Job deliveries handled, by outcome: succeeded, failed, retried, handed_back, answered_from_record.
# TYPE sigfollow_worker_jobs_total counter
sigfollow_worker_jobs_total{outcome="retried"} 1
sigfollow_worker_jobs_total{outcome="succeeded"} 1
# HELP sigfollow_worker_meta_errors_total Failed uploads to Meta, by Meta's error code ("none" without one, e.g. a network error) and kind.
# TYPE sigfollow_worker_meta_errors_total counter
sigfollow_worker_meta_errors_total{code="2",kind="transient"} 1
# HELP sigfollow_queue_jobs_pending Jobs in the stream not yet delivered to any worker.
# TYPE sigfollow_queue_jobs_pending gauge
sigfollow_queue_jobs_pending 0
`
	if err := testutil.GatherAndCompare(o.reg, strings.NewReader(want), "sigfollow_worker_jobs_total",
		"sigfollow_worker_meta_errors_total", "sigfollow_queue_jobs_pending"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(o.reg, "sigfollow_worker_stage_duration_seconds"); n != 6 {
		t.Errorf("%d stage histograms, want queued, lookup, fetch, meta_upload, settle and total", n)
	}
}
