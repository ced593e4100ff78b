// Package job defines what travels through the queue between ingest and the
// workers: the upload job that ingest publishes once a file is staged, the
// result a worker records and sends back, and the subjects and headers both
// sides agree on.
//
// In the flow request → auth → validate → stage → publish → worker → Meta →
// result, this package is the contract of the "publish" and "result" steps.
package job
