// Package apikey issues, stores and checks SigFollow API keys — the "auth"
// step of the flow.
//
// A key looks like sflo_live_<id>_<secret> (or sflo_test_…). Only its SHA-256
// is stored, in a NATS key-value bucket under the key id; the plaintext is
// shown once, when the key is created. Keys carry 190 bits of randomness, so a
// fast hash is enough (as for GitHub or Stripe keys): there is nothing for a
// slow password hash to protect against, and a check stays in microseconds.
// Hashes are compared in constant time.
package apikey
