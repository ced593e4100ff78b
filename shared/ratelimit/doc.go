// Package ratelimit is a GCRA (generic cell rate algorithm) rate limiter
// whose state lives in a NATS key-value bucket, so that every ingest
// replica draws on one budget per API key. ingest's /media route asks it
// once per request, after authentication and before reading the body.
//
// Each key's state is a single number, the theoretical arrival time (TAT),
// updated with compare-and-set on the entry's revision; a conflicting
// update from another replica is retried.
package ratelimit
