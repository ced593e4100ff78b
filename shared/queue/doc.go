// Package queue connects to NATS and declares the JetStream topology both
// ingest and the workers rely on: the work-queue stream of upload jobs, the
// shared consumer the workers pull from, and the key-value buckets for job
// results and API keys. Declaring is idempotent, so whichever process starts
// first creates everything and the others find it in place.
//
// In the flow it is the "publish" step's plumbing: ingest publishes into the
// stream declared here, workers consume from it, and results come back
// through the results bucket.
package queue
