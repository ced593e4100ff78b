// Command bench measures the whole media pipeline against its floor; it is
// what `make bench` runs. It builds nothing: it runs the ingest, worker and
// fake Graph API binaries `make build` leaves in bin/, with an embedded NATS
// server and a real MinIO server, all on this machine and on loopback only.
//
// For each file size and client concurrency it posts the same multipart
// uploads twice: straight to the fake Graph API (the floor: what a client
// posting to Meta directly would see), then through ingest, MinIO, JetStream
// and the workers to the same fake. It reports p50/p99 latency, uploads/s,
// MB/s, the pipeline's figures over the direct ones, and the peak RSS
// (VmHWM) of ingest and of each worker, which are started afresh for every
// scenario so that each peak is the scenario's own. Then it posts one file
// again and again (what the media-id cache answers), and runs the scaling
// scenario: the fake Graph API slowed to 250 ms per upload, with 1, 2 and 4
// worker processes.
//
// Besides the figures a client sees, it reports where the time went: the
// mean of each step of an upload as ingest and the workers time them (their
// *_stage_duration_seconds metrics), and the CPU time each process used per
// upload (from /proc), the fake Graph API and MinIO included.
//
// Usage:
//
//	bench [-quick] [-out bench-results/<time>.json] [-ingest ./bin/ingest] [-worker ./bin/worker] [-fakegraph ./bin/fakegraph]
//	bench -h    every flag: sizes, counts, concurrency, workers, MinIO's data directory
//
// A progress line on stderr follows the run; the tables (markdown) go to
// stdout, the results as JSON to -out. The performance targets are checked
// and marked PASS or MISS; only failed uploads make bench exit non-zero.
//
// Every file is text/plain, opened by a line that makes it unique, so that
// nothing along the way can answer from a cache except in the repeat
// scenario. Uploads are spread over 16 phone number ids, as a gateway's
// traffic is (the workers cap their uploads in flight per number). Ingest's
// per-key rate limit is set to the highest rate it accepts, so that it is
// checked on every upload without turning any away. The child processes see
// only PATH, HOME, TMPDIR and the settings bench gives them: GOMAXPROCS is
// unset, so they use every core, and they log at warn level.
package main
