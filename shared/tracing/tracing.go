package tracing

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C Trace Context propagator both binaries use.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Header adapts NATS message headers to a propagation.TextMapCarrier.
type Header nats.Header

// Get returns the first value of key.
func (h Header) Get(key string) string { return nats.Header(h).Get(key) }

// Set replaces key's values with value.
func (h Header) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into a message's headers.
func Inject(ctx context.Context, h nats.Header) { Propagator().Inject(ctx, Header(h)) }

// Extract returns ctx carrying the trace context found in h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator().Extract(ctx, Header(h))
}

// Config sets up a tracer provider.
type Config struct {
	// Service is the service.name resource attribute.
	Service string
	// OTLPEndpoint is the OTLP/HTTP collector's base URL (for example
	// http://collector:4318; /v1/traces is appended). Empty exports nothing.
	OTLPEndpoint string
}

// NewProvider returns a tracer provider that samples what its parent
// sampled (and every root), exporting over OTLP/HTTP if cfg.OTLPEndpoint
// is set. Call Shutdown on it to flush.
func NewProvider(ctx context.Context, cfg Config, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	res := sdkresource.NewSchemaless(semconv.ServiceName(cfg.Service))
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if cfg.OTLPEndpoint != "" {
		// As OTEL_EXPORTER_OTLP_ENDPOINT specifies: the base URL, to which
		// the signal's path is appended.
		url := strings.TrimRight(cfg.OTLPEndpoint, "/") + "/v1/traces"
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		log.Info("exporting traces over OTLP/HTTP", "endpoint", cfg.OTLPEndpoint)
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// TraceID returns the trace id of ctx's span, or "" if there is none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// Shutdown flushes the spans tp has not exported yet, waiting at most a few
// seconds.
func Shutdown(tp *sdktrace.TracerProvider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces failed", "err", err)
	}
}
