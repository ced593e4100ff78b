// Package envconfig fills a binary's Config struct from environment
// variables, using github.com/caarlos0/env struct tags (`env`, `envDefault`,
// `required`, `file`). It reads variables only through the getenv function
// it is given, so tests and run(...) control the environment, and it can
// list every variable a Config reads, for documentation and for checking
// deployment files against the binaries.
package envconfig
