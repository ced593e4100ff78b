// Package fakegraph is a stand-in for the media endpoints of Meta's Graph
// API (WhatsApp Cloud API), for tests, benchmarks and local runs, where Meta
// itself cannot be reached. It sits at the far end of the flow: the worker's
// "Meta" step talks to it exactly as it would talk to Meta.
//
// It implements POST /{version}/{phone-number-id}/media, GET and DELETE
// /{version}/{media-id}, and the short-lived download URL, with Meta's
// checks (Bearer token, messaging_product, type against content, per-type
// size limits) and Meta's error shapes. Under /_fake/ it offers what Meta
// doesn't: fault injection (latency, 5xx, 429 with code 80007, 190, dropped
// connections), a list of what was uploaded, and counters.
//
// It is a development tool. Nothing in the pipeline takes a shortcut because
// of it: the worker's Graph API client is the one that talks to Meta.
package fakegraph
