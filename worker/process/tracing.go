package process

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sigfollow/media/shared/tracing"
)

// startSpan starts the delivery's span as a child of the trace context the
// job's message carries (ingest's request span), and tags the delivery's
// log lines with the trace id.
func (p *Processor) startSpan(ctx context.Context, d *delivery) (context.Context, func()) {
	ctx = tracing.Extract(ctx, d.msg.Headers())
	ctx, span := p.Tracing.Tracer("github.com/sigfollow/media/worker/process").Start(ctx, "upload job",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("sigfollow.job_id", d.job.ID),
			attribute.String("sigfollow.phone_number_id", d.job.PhoneNumberID),
			attribute.Int("sigfollow.attempt", d.attempt),
		))
	if id := tracing.TraceID(ctx); id != "" {
		d.log = d.log.With("trace_id", id)
	}
	return ctx, func() { span.End() }
}
