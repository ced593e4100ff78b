// Package webhook is the worker's webhook dispatcher. It consumes the
// webhook delivery stream (job.WebhookStream) through one durable consumer
// shared by every worker process, signs each event with the API key's
// webhook secret and posts it with the SSRF-guarded client of
// shared/webhook.
//
// A try that is not answered 2xx is retried on a schedule (by default
// immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), later if the
// receiver's Retry-After asks for it, always under the same webhook-id.
// After the last try the delivery is dead-lettered (job.WebhookDeadStream)
// and the job's status shows the webhook as failed.
//
// In the flow it runs after the worker has recorded a job's result: the
// processor publishes the delivery, the dispatcher sends it.
package webhook
