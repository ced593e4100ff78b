package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// The dead-letter queue: jobs that ended as failed for a reason that a later
// attempt may overcome (Meta down for longer than the retries, a refused
// token an operator has since fixed, every delivery used up by crashing
// workers) are copied here so they can be listed and replayed. The stream
// keeps them with limits retention; nothing consumes it.
const (
	// DeadLetterStream holds dead-lettered jobs.
	DeadLetterStream = "MEDIA_DLQ"
	// DeadLetterSubjectPrefix prefixes dead-letter subjects; the phone
	// number id follows.
	DeadLetterSubjectPrefix = "media.dlq"
	// DeadLetterMaxAge is how long a dead-lettered job is kept. Its staged
	// file is expired by the bucket's lifecycle rule after one day, so an
	// older entry can be listed but no longer replayed.
	DeadLetterMaxAge = 7 * 24 * time.Hour
	// MaxDeliveriesAdvisory is the subject on which JetStream announces a
	// job of the shared consumer that used up its deliveries.
	MaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + job.Stream + "." + Consumer
	// ExhaustedStream captures the max-deliveries advisories, so that none
	// is missed while no worker runs; work-queue retention.
	ExhaustedStream = "MEDIA_JOBS_EXHAUSTED"
	// ExhaustedConsumer is the durable consumer the workers share to handle
	// those advisories.
	ExhaustedConsumer = "dead-letterers"
)

// Headers of a dead-lettered job, besides the original job's own.
const (
	// HeaderDeadReason is the failed result's error code.
	HeaderDeadReason = "Sigfollow-Dead-Reason"
	// HeaderDeadMessage is the failed result's message.
	HeaderDeadMessage = "Sigfollow-Dead-Message"
	// HeaderDeadDeliveries is how often the job was delivered.
	HeaderDeadDeliveries = "Sigfollow-Dead-Deliveries"
	// HeaderDeadJobSeq is the job's sequence in the job stream.
	HeaderDeadJobSeq = "Sigfollow-Dead-Job-Seq"
)

// DeadLetterSubject returns the subject a dead-lettered job for
// phoneNumberID is stored under.
func DeadLetterSubject(phoneNumberID string) string {
	return DeadLetterSubjectPrefix + "." + phoneNumberID
}

// declareDeadLetters declares the dead-letter stream.
func declareDeadLetters(ctx context.Context, js jetstream.JetStream, cfg Config, t *Topology) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	t.DeadLetters, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "SigFollow upload jobs that failed and may be replayed",
		Subjects:    []string{DeadLetterSubjectPrefix + ".*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
		MaxAge:      DeadLetterMaxAge,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	t.Exhausted, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ExhaustedStream,
		Description: "JetStream's advisories of upload jobs that used up their deliveries",
		Subjects:    []string{MaxDeliveriesAdvisory},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
		MaxAge:      DeadLetterMaxAge,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", ExhaustedStream, err)
	}
	return nil
}

// DeadLetter is one dead-lettered job.
type DeadLetter struct {
	// Seq is the entry's sequence in the dead-letter stream.
	Seq uint64
	// Job is the job as it was published.
	Job job.Job
	// Reason and Message are the failed result's error code and message.
	Reason  string
	Message string
	// Deliveries is how often the job was delivered before it failed.
	Deliveries int
	// At is when the job was dead-lettered.
	At time.Time
}

// DeadLetters reads and writes the dead-letter stream.
type DeadLetters struct {
	js        jetstream.JetStream
	stream    jetstream.Stream
	jobs      jetstream.Stream
	exhausted jetstream.Stream
	results   jetstream.KeyValue
}

// NewDeadLetters returns the dead-letter queue of topology t.
func NewDeadLetters(js jetstream.JetStream, t *Topology) *DeadLetters {
	return &DeadLetters{js: js, stream: t.DeadLetters, jobs: t.Jobs, exhausted: t.Exhausted, results: t.Results}
}

// ExhaustedEvents creates or updates, and returns, the durable pull
// consumer of the max-deliveries advisories that every worker shares. An
// advisory not acknowledged within a minute is delivered again.
func (d *DeadLetters) ExhaustedEvents(ctx context.Context) (jetstream.Consumer, error) {
	c, err := d.exhausted.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:     ExhaustedConsumer,
		Description: "SigFollow workers dead-lettering jobs that used up their deliveries",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", ExhaustedConsumer, err)
	}
	return c, nil
}

// Add copies a failed job to the dead-letter stream. Adding the same job
// from the same job-stream sequence twice stores it once.
func (d *DeadLetters) Add(ctx context.Context, j job.Job, jobSeq uint64, deliveries int, reason, message string) error {
	msg, err := job.NewMsg(DeadLetterSubject(j.PhoneNumberID), j)
	if err != nil {
		return err
	}
	msg.Header.Set(HeaderDeadReason, reason)
	msg.Header.Set(HeaderDeadMessage, message)
	msg.Header.Set(HeaderDeadDeliveries, strconv.Itoa(deliveries))
	msg.Header.Set(HeaderDeadJobSeq, strconv.FormatUint(jobSeq, 10))
	id := j.ID + "." + strconv.FormatUint(jobSeq, 10)
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(DeadLetterStream)); err != nil {
		return fmt.Errorf("queue: dead-letter job %s: %w", j.ID, err)
	}
	return nil
}

// ErrNotDeadLettered is returned for a job that is not in the dead-letter
// stream.
var ErrNotDeadLettered = errors.New("queue: no such dead-lettered job")

// List returns every dead-lettered job, oldest first.
func (d *DeadLetters) List(ctx context.Context) ([]DeadLetter, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: %s: %w", DeadLetterStream, err)
	}
	var out []DeadLetter
	err = scan(ctx, d.stream, DeadLetterSubjectPrefix+".*", info.State.FirstSeq, info.State.LastSeq, func(raw *jetstream.RawStreamMsg) {
		out = append(out, decodeDeadLetter(raw))
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %s: %w", DeadLetterStream, err)
	}
	return out, nil
}

// Find returns the newest dead-lettered entry of jobID.
func (d *DeadLetters) Find(ctx context.Context, jobID string) (DeadLetter, error) {
	all, err := d.List(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Job.ID == jobID {
			return all[i], nil
		}
	}
	return DeadLetter{}, fmt.Errorf("%w: %s", ErrNotDeadLettered, jobID)
}

func decodeDeadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	dl := DeadLetter{Seq: raw.Sequence, At: raw.Time,
		Reason: raw.Header.Get(HeaderDeadReason), Message: raw.Header.Get(HeaderDeadMessage)}
	dl.Deliveries, _ = strconv.Atoi(raw.Header.Get(HeaderDeadDeliveries))
	j, err := job.Decode(raw.Header, raw.Data)
	if err != nil {
		dl.Reason, dl.Message = "malformed", err.Error()
	}
	dl.Job = j
	return dl
}

// Replay queues a dead-lettered job again under its own job id: its failed
// result is forgotten (so the worker uploads instead of answering from the
// record), the job is published to the job stream and the entry is removed
// from the dead-letter stream. No caller waits for a replayed job; its new
// result is recorded under the same job id.
func (d *DeadLetters) Replay(ctx context.Context, dl DeadLetter) error {
	if err := dl.Job.Validate(); err != nil {
		return fmt.Errorf("queue: replay: %w", err)
	}
	if err := d.results.Delete(ctx, dl.Job.ID); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("queue: replay %s: forget the failed result: %w", dl.Job.ID, err)
	}
	msg, err := job.NewMsg(job.Subject(dl.Job.PhoneNumberID), dl.Job)
	if err != nil {
		return err
	}
	// A message id of its own: the job id alone may still sit in the job
	// stream's duplicate window.
	id := dl.Job.ID + ".replay." + strconv.FormatUint(dl.Seq, 10)
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(job.Stream)); err != nil {
		return fmt.Errorf("queue: replay %s: publish: %w", dl.Job.ID, err)
	}
	if err := d.stream.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("queue: replay %s: remove from %s: %w", dl.Job.ID, DeadLetterStream, err)
	}
	return nil
}

// Delete removes a dead-lettered entry without replaying it.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	if err := d.stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("queue: %s seq %d: %w", DeadLetterStream, seq, err)
	}
	return nil
}

// scan calls fn for every message of stream from sequence first to last,
// skipping the gaps deleted messages leave in one request each.
func scan(ctx context.Context, stream jetstream.Stream, subjects string, first, last uint64, fn func(*jetstream.RawStreamMsg)) error {
	for seq := max(first, 1); seq <= last; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("seq %d: %w", seq, err)
		}
		if raw.Sequence > last {
			return nil
		}
		fn(raw)
		seq = raw.Sequence + 1
	}
	return nil
}

// Job returns the job stream's message at seq, or ErrMsgNotFound if it is
// gone (acknowledged, terminated or already moved).
func (d *DeadLetters) Job(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	return d.jobs.GetMsg(ctx, seq)
}

// RemoveJob deletes the job stream's message at seq; one already gone is
// not an error.
func (d *DeadLetters) RemoveJob(ctx context.Context, seq uint64) error {
	if err := d.jobs.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("queue: %s seq %d: %w", job.Stream, seq, err)
	}
	return nil
}

// MaxDeliveriesEvent is JetStream's advisory that a job used up its
// deliveries.
type MaxDeliveriesEvent struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}
