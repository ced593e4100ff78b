package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

// TestContextCrossesNATSHeaders: what Inject writes into a message's
// headers, Extract on the other side turns back into the same trace.
func TestContextCrossesNATSHeaders(t *testing.T) {
	tp, err := NewProvider(context.Background(), Config{Service: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer Shutdown(tp, slog.New(slog.DiscardHandler))
	ctx, span := tp.Tracer("test").Start(context.Background(), "publish")
	defer span.End()

	h := nats.Header{}
	Inject(ctx, h)
	got := Extract(context.Background(), h)
	if TraceID(got) == "" || TraceID(got) != TraceID(ctx) {
		t.Fatalf("extracted trace %q, want %q (headers %v)", TraceID(got), TraceID(ctx), h)
	}
	if sc := trace.SpanContextFromContext(got); sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
		t.Errorf("extracted span %v, want the remote parent %v", sc.SpanID(), span.SpanContext().SpanID())
	}
	if TraceID(Extract(context.Background(), nil)) != "" {
		t.Error("a message without headers yields a trace")
	}
}

// TestSpansAreExportedToTheEndpoint: with an OTLP endpoint configured,
// finished spans are posted to its /v1/traces.
func TestSpansAreExportedToTheEndpoint(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	tp, err := NewProvider(context.Background(), Config{Service: "test", OTLPEndpoint: collector.URL + "/"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "request")
	span.End()
	Shutdown(tp, slog.New(slog.DiscardHandler)) // flushes
	if posts.Load() == 0 {
		t.Fatal("no spans posted to the collector's /v1/traces")
	}
}
