package process

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// Async is what the processor updates besides the job's result: the job's
// status record (queue.Topology.Status), the media-id cache
// (queue.Topology.Cache) and, for jobs with a callback URL, the webhook
// delivery stream.
type Async struct {
	// Statuses holds the job status records.
	Statuses *job.Statuses
	// Cache is the media-id cache bucket; a successful upload is written
	// there.
	Cache jetstream.KeyValue
	// JS publishes webhook deliveries.
	JS jetstream.JetStream
}

// markProcessing shows the job as processing, unless it already has a
// terminal state.
func (p *Processor) markProcessing(ctx context.Context, d *delivery) {
	if p.Async == nil {
		return
	}
	j := d.job
	err := p.Async.Statuses.Update(ctx, j.ID, func(st *job.StatusRecord) bool {
		if st.Status.Terminal() || st.Status == job.StatusProcessing {
			return false
		}
		fillStatus(st, j)
		st.Status = job.StatusProcessing
		return true
	})
	if err != nil {
		d.log.Warn("showing the job as processing failed", "err", err)
	}
}

// publishOutcome shows a terminal result in the job's status, caches a
// media id and queues the webhook. It runs after the result is recorded and
// again when a redelivered job is answered from the record, so a crash in
// between loses neither the status nor the webhook (which the stream
// deduplicates by webhook-id).
func (p *Processor) publishOutcome(ctx context.Context, d *delivery, r job.Result) {
	if p.Async == nil {
		return
	}
	j := d.job
	if r.CompletedAt.IsZero() {
		r.CompletedAt = time.Now().UTC()
	}
	settle := job.Settle(r)
	err := p.Async.Statuses.Update(ctx, j.ID, func(st *job.StatusRecord) bool {
		changed := st.PhoneNumberID == ""
		fillStatus(st, j)
		if j.CallbackURL != "" && st.Webhook == nil {
			st.Webhook = &job.WebhookState{URL: j.CallbackURL, State: job.WebhookPending, ID: job.WebhookID(j.ID)}
			changed = true
		}
		return settle(st) || changed
	})
	if err != nil {
		d.log.Warn("recording the job's status failed", "err", err)
	}
	if r.Status == job.StatusSucceeded && r.MediaID != "" {
		entry, _ := json.Marshal(job.CacheEntry{MediaID: r.MediaID, JobID: j.ID, CreatedAt: r.CompletedAt})
		if _, err := p.Async.Cache.Put(ctx, job.CacheKey(j.PhoneNumberID, j.Type, j.SHA256), entry); err != nil {
			d.log.Warn("caching the media id failed", "err", err)
		}
	}
	if j.CallbackURL != "" {
		if err := job.PublishDelivery(ctx, p.Async.JS, job.NewDelivery(j, r, r.CompletedAt)); err != nil {
			d.log.Error("queueing the webhook failed", "err", err)
		}
	}
}

// fillStatus completes a status record from the job, for records ingest
// did not write (or that expired).
func fillStatus(st *job.StatusRecord, j job.Job) {
	if st.PhoneNumberID == "" {
		st.PhoneNumberID, st.KeyID, st.CreatedAt = j.PhoneNumberID, j.KeyID, j.CreatedAt
	}
}
