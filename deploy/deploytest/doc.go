// Package deploytest checks the files that run the pipeline beyond one
// process: compose.yaml at the repository root, the Dockerfile in deploy/
// and the Kubernetes manifests in deploy/kubernetes.
//
// It holds only tests. They read each file with the parser its real
// consumer uses (the Compose loader, BuildKit's Dockerfile parser, the
// Kubernetes API machinery with strict decoding), and they compare every
// environment variable a file sets with the list the binaries print with
// their `env` subcommand, so a renamed setting cannot silently stop
// reaching a container.
package deploytest
