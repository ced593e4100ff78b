// Package profiling serves Go's runtime profiles (net/http/pprof) on a
// listener of their own, for operators who need to see where a binary
// spends its CPU or memory. It is off unless an address is configured
// (PPROF_ADDR on both binaries), and that address should be a loopback or
// otherwise private one: the profiles expose the process's internals.
package profiling
