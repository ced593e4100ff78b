// Package health probes a running binary's own /healthz endpoint. Both
// binaries expose it as a `healthcheck` subcommand, so that container health
// checks work in images without a shell or curl.
package health
