package process

import (
	"context"
	"encoding/json"
	"sync"
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
// terminal state. It writes in the background, beside the upload, and
// returns the function that waits for the write: the status is a view for
// pollers, not a step the upload waits on, and a write that lands late
// cannot undo a terminal state (Statuses.Apply is compare-and-set). The
// version it leaves in d.status lets publishOutcome write without reading.
func (p *Processor) markProcessing(ctx context.Context, d *delivery) (wait func()) {
	if p.Async == nil {
		return func() {}
	}
	j := d.job
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err := p.Async.Statuses.Apply(ctx, j.ID, nil, func(st *job.StatusRecord) bool {
			if st.Status.Terminal() || st.Status == job.StatusProcessing {
				return false
			}
			fillStatus(st, j)
			st.Status = job.StatusProcessing
			return true
		})
		d.status = v
		if err != nil {
			d.log.Warn("showing the job as processing failed", "err", err)
		}
	}()
	return func() { <-done }
}

// publishOutcome shows a terminal result in the job's status and writes a
// media id to the media-id cache, the two at once, before the caller is
// answered: a caller that polls the job or sends the same file again once
// answered finds both. It runs after the result is recorded and again when
// a redelivered job is answered from the record, so a crash in between
// loses neither.
func (p *Processor) publishOutcome(ctx context.Context, d *delivery, r job.Result) {
	if p.Async == nil {
		return
	}
	j := d.job
	r.CompletedAt = completedAt(r)
	var wg sync.WaitGroup
	if r.Status == job.StatusSucceeded && r.MediaID != "" {
		wg.Go(func() {
			entry, _ := json.Marshal(job.CacheEntry{MediaID: r.MediaID, JobID: j.ID, CreatedAt: r.CompletedAt})
			if _, err := p.Async.Cache.Put(ctx, job.CacheKey(j.PhoneNumberID, j.Type, j.SHA256), entry); err != nil {
				d.log.Warn("caching the media id failed", "err", err)
			}
		})
	}
	settle := job.Settle(r)
	_, err := p.Async.Statuses.Apply(ctx, j.ID, d.status, func(st *job.StatusRecord) bool {
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
	wg.Wait()
}

// queueWebhook queues the job's webhook delivery, if it has a callback URL.
// The stream deduplicates deliveries by webhook-id, so a redelivered job
// queues it again without a second event.
func (p *Processor) queueWebhook(ctx context.Context, d *delivery, r job.Result) {
	if p.Async == nil || d.job.CallbackURL == "" {
		return
	}
	r.CompletedAt = completedAt(r)
	if err := job.PublishDelivery(ctx, p.Async.JS, job.NewDelivery(d.job, r, r.CompletedAt)); err != nil {
		d.log.Error("queueing the webhook failed", "err", err)
	}
}

// completedAt is when r was reached; now for a result that does not say.
func completedAt(r job.Result) time.Time {
	if r.CompletedAt.IsZero() {
		return time.Now().UTC()
	}
	return r.CompletedAt
}

// fillStatus completes a status record from the job, for records ingest
// did not write (or that expired).
func fillStatus(st *job.StatusRecord, j job.Job) {
	if st.PhoneNumberID == "" {
		st.PhoneNumberID, st.KeyID, st.CreatedAt = j.PhoneNumberID, j.KeyID, j.CreatedAt
	}
}
