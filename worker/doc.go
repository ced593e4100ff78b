// Command worker is SigFollow's upload worker: the "worker → Meta → result"
// steps of the flow. It pulls upload jobs from the JetStream consumer every
// worker process shares, streams each staged file from the object store to
// Meta's Graph API, records the result, answers the waiting caller and
// deletes the staged file. Start as many processes as throughput needs.
//
// It is configured by environment variables only; `worker env` lists them
// with their defaults (see Config). SIGINT or SIGTERM stops it gracefully:
// it stops pulling, lets uploads in flight finish within
// WORKER_SHUTDOWN_TIMEOUT, hands the rest back to the queue and exits 0.
//
// Packages: graph is the Graph API client, process the job handler and the
// pull loop.
package main
