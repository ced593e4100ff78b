// Package job defines what travels through the queue between ingest and the
// workers: the upload job that ingest publishes once a file is staged (or,
// for a small file, with the file as the message's payload: NewMsg and
// Decode), the result a worker records and sends back, the job's status
// record, and the subjects and headers both sides agree on.
//
// In the flow request → auth → validate → stage → publish → worker → Meta →
// result, this package is the contract of the "publish" and "result" steps.
package job
