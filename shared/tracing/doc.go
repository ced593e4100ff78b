// Package tracing carries OpenTelemetry trace context from ingest through a
// job's NATS message to the worker, and sets up each binary's tracer
// provider. Context travels as W3C Trace Context (the traceparent and
// tracestate headers) in the job message's headers; spans are exported over
// OTLP only when an endpoint is configured, but are created and propagated
// either way so that log lines can carry trace ids.
package tracing
