// Package process is the worker's job handler: the "worker" step of the flow
// request → auth → validate → stage → publish → worker → Meta → result.
//
// A Processor pulls upload jobs from the durable JetStream consumer that
// every worker process shares, never more than it has free slots for, so an
// idle process is never left waiting while a busy one holds jobs. For each
// job it streams the staged file from the object store to Meta through
// package graph, sending progress heartbeats while the upload runs.
//
// A job's end is decided once, from the failure's classification:
//
//   - success, a terminal failure (Meta rejected the file or the token, the
//     staged object is gone), or a retryable failure on the last allowed
//     delivery: the result is recorded in the results bucket, sent to the
//     waiting caller if there is one, the staged object is deleted and the
//     job acknowledged. A job is never dropped without a result.
//   - a retryable failure with deliveries left: the job is handed back with
//     a delay (exponential backoff with full jitter, never sooner than
//     Meta's Retry-After).
//   - a job that cannot be decoded is terminated.
//
// Because JetStream may deliver a job again (a lost ack, a crash after the
// upload), the recorded result is the job's idempotency key: a job whose
// result already exists is answered from the record and never uploaded
// twice.
//
// On stop, a Processor stops pulling, lets uploads in flight finish within
// the shutdown timeout, and hands whatever is left back to the queue at once
// so another process picks it up.
package process
