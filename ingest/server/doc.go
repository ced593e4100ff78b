// Package server is ingest's HTTP edge, built on echo: it authenticates the
// API key, reads and validates the multipart upload (package upload), stages
// the file in the object store (or, if small, in the job itself), publishes
// the job to JetStream and, on the
// synchronous route, waits for the worker's answer on a reply subject.
//
// The flow reads top to bottom in media.go: request → auth (auth.go) →
// validate → stage → publish → wait → answer. Every error becomes an HTTP
// response in one place, errors.go.
package server
