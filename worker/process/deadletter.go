package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
)

// Dead letters.
const (
	// exhaustedMessage is the failed result of a job whose deliveries were
	// all used up without an outcome.
	exhaustedMessage = "every delivery of the job was used up without an outcome (a worker stopped during its last attempt); it is in the dead-letter queue"
)

// replayable reports whether a failure with code may succeed when the job is
// replayed later: Meta's outages and an access token an operator can fix are;
// a file Meta rejected, or one no longer staged, is not.
func replayable(code string) bool {
	switch code {
	case job.CodeMetaUnavailable, job.CodeMetaAuth, job.CodeInternal:
		return true
	}
	return false
}

// deadLetter copies a job that is about to fail to the dead-letter queue if
// a replay may help, and keeps its staged file for that replay. The bucket's
// lifecycle rule removes the file if nobody replays the job.
func (p *Processor) deadLetter(ctx context.Context, d *delivery, code, message string) {
	if p.DeadLetters == nil || !replayable(code) {
		return
	}
	md, err := d.msg.Metadata()
	if err != nil {
		return
	}
	if err := p.DeadLetters.Add(ctx, d.job, md.Sequence.Stream, d.attempt, code, message); err != nil {
		d.log.Error("dead-lettering the failed job failed; it cannot be replayed", "err", err)
		return
	}
	d.keepStaged = true
	d.log.Warn("job dead-lettered", "code", code)
}

// WatchDeadLetters brings jobs that used up their deliveries to a terminal
// state until ctx is done: JetStream keeps such a job in the work-queue
// stream and delivers it no more, so without this nobody would answer it.
// JetStream's max-deliveries advisories are captured in a stream (so none is
// missed while no worker runs) and consumed by every worker process through
// one shared consumer. Each such job is copied to the dead-letter queue (its
// staged file kept for a replay), recorded as failed, answered, and removed
// from the job stream.
func (p *Processor) WatchDeadLetters(ctx context.Context) error {
	if p.DeadLetters == nil {
		return errors.New("process: no dead-letter queue configured")
	}
	cons, err := p.DeadLetters.ExhaustedEvents(ctx)
	if err != nil {
		return err
	}
	pause := pullPauseMin
	for ctx.Err() == nil {
		batch, err := cons.Fetch(8, jetstream.FetchMaxWait(pullWait))
		if err == nil {
			for m := range batch.Messages() {
				p.exhaustedEvent(ctx, m)
			}
			err = batch.Error()
		}
		if err == nil || errors.Is(err, context.Canceled) {
			pause = pullPauseMin
			continue
		}
		p.Log.Warn("pulling max-deliveries advisories failed; retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, pullPauseMax)
	}
	return nil
}

// exhaustedEvent handles one max-deliveries advisory and acknowledges it
// once the job is settled; on failure it comes back later.
func (p *Processor) exhaustedEvent(ctx context.Context, m jetstream.Msg) {
	var ev queue.MaxDeliveriesEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.StreamSeq == 0 {
		p.Log.Warn("malformed max-deliveries advisory; dropped", "err", err)
		_ = m.Term()
		return
	}
	if err := p.exhausted(ctx, ev.StreamSeq, ev.Deliveries); err != nil {
		p.Log.Warn("settling a job that used up its deliveries failed; retrying", "stream_seq", ev.StreamSeq, "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Ack()
}

// exhausted brings the job at stream sequence seq, which JetStream will not
// deliver again, to a terminal state.
func (p *Processor) exhausted(ctx context.Context, seq uint64, deliveries int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	log := p.Log.With("stream_seq", seq, "deliveries", deliveries)
	raw, err := p.DeadLetters.Job(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // acknowledged after all, or already handled
	}
	if err != nil {
		return fmt.Errorf("read the job: %w", err)
	}
	j, err := decode(raw.Header, raw.Data)
	if err != nil {
		log.Error("malformed job used up its deliveries; removed", "err", err)
		return p.DeadLetters.RemoveJob(ctx, seq)
	}
	log = log.With("job_id", j.ID, "phone_number_id", j.PhoneNumberID)
	replyTo := raw.Header.Get(job.HeaderReplyTo)

	prev, err := p.lookup(ctx, j.ID)
	if err != nil {
		return err
	}
	if prev != nil {
		// The job was finished but its ack was lost: tidy up only.
		if prev.Status == job.StatusSucceeded {
			if err := p.removeStaged(ctx, j); err != nil {
				return fmt.Errorf("delete the staged file: %w", err)
			}
		}
		p.reply(replyTo, *prev, log)
	} else {
		res := job.Result{JobID: j.ID, Status: job.StatusFailed, Attempts: deliveries, CompletedAt: time.Now().UTC(),
			Error: &job.Error{Code: job.CodeInternal, Message: exhaustedMessage}}
		if err := p.DeadLetters.Add(ctx, j, seq, deliveries, res.Error.Code, res.Error.Message); err != nil {
			return err
		}
		if err := p.record(ctx, res); err != nil {
			return fmt.Errorf("record the failed result: %w", err)
		}
		p.reply(replyTo, res, log)
		log.Warn("job used up its deliveries; failed and dead-lettered")
	}
	return p.DeadLetters.RemoveJob(ctx, seq)
}

// reply sends r to a waiting caller, if there is one.
func (p *Processor) reply(replyTo string, r job.Result, log *slog.Logger) {
	if replyTo == "" {
		return
	}
	data, err := json.Marshal(r)
	if err == nil {
		err = p.Conn.Publish(replyTo, data)
	}
	if err != nil {
		log.Warn("sending the result to the caller failed", "err", err)
	}
}

// removeStaged deletes a job's staged file; one already gone is not an
// error, and a job that carries its file has none.
func (p *Processor) removeStaged(ctx context.Context, j job.Job) error {
	if j.Inline() {
		return nil
	}
	return p.Store.RemoveObject(ctx, j.Bucket, j.ObjectKey, minio.RemoveObjectOptions{})
}
