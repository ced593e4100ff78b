// Command devstack runs the whole media pipeline on one machine for local
// development; it is what `make run` starts. In order it starts an
// embedded NATS server with JetStream, a real MinIO server, the fake Graph
// API (package shared/fakegraph) standing in for Meta, the ingest binary
// and DEVSTACK_WORKERS worker binaries, the last two as child processes
// whose output it prefixes with their names. Once ingest answers /readyz it
// prints the URLs, the development API key and a curl line that uploads a
// file through the whole flow: client → ingest → MinIO and NATS → worker →
// fake Graph API.
//
// Usage:
//
//	devstack [-ingest ./bin/ingest] [-worker ./bin/worker]
//	devstack env    list the environment variables devstack reads
//
// One Ctrl-C (or SIGTERM) stops everything in order: ingest, then the
// workers, each given DEVSTACK_STOP_TIMEOUT before it is killed, then the
// fake, MinIO and NATS. A second Ctrl-C kills what is left at once. If a
// child exits on its own, devstack stops the rest and exits non-zero.
//
// Children inherit devstack's environment, so any variable ingest or the
// worker reads can be set for them, except those devstack sets to wire
// the pipeline together: NATS_URL, NATS_REPLICAS, S3_ENDPOINT,
// S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET, LOG_LEVEL, LOG_FORMAT, and
// INGEST_ADDR and SIGFOLLOW_DEV_API_KEY for ingest, META_BASE_URL,
// META_ACCESS_TOKEN and META_PHONE_TOKENS for the workers (from devstack's
// own settings of the same names), and WORKER_METRICS_ADDR, cleared because
// the workers would share its port.
//
// State (JetStream's store, MinIO's data) lives under DEVSTACK_DATA_DIR and
// survives restarts; delete the directory to start afresh. Everything
// devstack sets up, the development API key and the MinIO credentials
// included, is for local use only.
package main
