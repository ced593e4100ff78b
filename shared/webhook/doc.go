// Package webhook sends SigFollow's webhooks: it signs events per the
// Standard Webhooks specification (webhook-id, webhook-timestamp,
// webhook-signature) and posts them through an HTTP client that refuses to
// connect to loopback, private, link-local, unique-local, multicast and
// unspecified addresses. The check runs on the address actually dialled, so
// DNS tricks and rebinding do not get past it; ValidateURL refuses plainly
// bad callback URLs when a job is submitted.
//
// In the flow, ingest calls ValidateURL before accepting a job with a
// callback URL, and the worker's webhook dispatcher sends with Client once
// the job has its result.
package webhook
