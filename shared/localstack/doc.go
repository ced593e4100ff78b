// Package localstack starts the pipeline's infrastructure on one machine:
// an embedded NATS server with JetStream, and a real MinIO server process
// from the binary `make` installs. `make run` (deploy/devstack) and the
// integration tests (package testenv) both use it; production deployments
// run NATS and an S3-compatible store of their own and never import it.
package localstack
