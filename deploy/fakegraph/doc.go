// Command fakegraph serves the fake Graph API (package shared/fakegraph) on
// its own: the media endpoints of Meta's WhatsApp Cloud API, with Meta's
// checks and error shapes, plus fault injection, the list of uploads and
// counters under /_fake/. It stands where Meta stands at the far end of the
// flow, for workers run against it by compose's dev profile and by the
// fault-injection tooling; `make run` (deploy/devstack) serves the same fake
// in its own process.
//
// Usage:
//
//	fakegraph        serve (configured by environment variables)
//	fakegraph env    list the environment variables it reads
//
// Workers reach it by setting META_BASE_URL to its address and
// META_ACCESS_TOKEN to the same token.
package main
