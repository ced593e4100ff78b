// Command faultrun is the pipeline's fault-injection run (`make faults`).
// It starts the whole stack as separate parts on loopback — NATS (in this
// process, so it can be stopped and started on the same port and store),
// MinIO (a real server process, restarted on the same port and data), the
// fake Graph API (in this process), and ingest and worker processes from
// bin/ — then sends a bounded number of uploads while it SIGKILLs and
// restarts workers, restarts a worker gracefully, stops NATS and MinIO and
// brings them back, and makes the fake Graph API fail and throttle.
//
// When the load is done it waits for the pipeline to settle and reconciles
// what clients were told with what the pipeline recorded:
//
//	accepted   answers that carried a job id (200, 202, 502, 504, ...)
//	refused    answers without a job (503 during an outage): nothing queued
//	succeeded  accepted jobs whose recorded result is a media id Meta has
//	failed     accepted jobs recorded as failed (dead-lettered ones counted)
//	lost       accepted jobs without a terminal result, or with a media id
//	           Meta does not have
//	leaked     staged objects left that no dead-lettered job keeps for replay
//
// It exits non-zero if lost or leaked is not 0. -short is the version
// `make test` runs (through this package's test): fewer uploads and a
// faster fault schedule, about a minute in all.
package main
