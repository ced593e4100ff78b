// Package objstore connects to the S3-compatible object store (MinIO
// locally) that holds staged uploads between ingest and the workers, and
// makes sure the staging bucket exists. Ingest writes each validated file
// here ("stage"), a worker reads it back to stream it to Meta, and whoever
// reaches a terminal state deletes it.
package objstore
