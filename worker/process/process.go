package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/worker/graph"
)

// Tokens picks the Meta access token for a phone number id.
type Tokens struct {
	// Default is the token for every phone number id without its own.
	Default string
	// PerPhone maps phone number ids to their own tokens.
	PerPhone map[string]string
}

// For returns the token for phone, or "" if none is configured.
func (t Tokens) For(phone string) string {
	if tok, ok := t.PerPhone[phone]; ok {
		return tok
	}
	return t.Default
}

// Config tunes a Processor.
type Config struct {
	// Tokens are Meta access tokens.
	Tokens Tokens
	// Concurrency is how many jobs this process handles at once.
	Concurrency int
	// AckWait is the consumer's ack wait; a progress heartbeat goes out
	// every third of it while a job is being worked on.
	AckWait time.Duration
	// MaxDeliver is the consumer's delivery limit. On the last delivery a
	// retryable failure becomes a failed result.
	MaxDeliver int
	// BackoffBase and BackoffMax bound the delay before a retry: the ceiling
	// doubles from BackoffBase with each delivery, up to BackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ShutdownTimeout is how long Run lets in-flight jobs finish once its
	// context is done; the jobs still running then go back to the queue.
	ShutdownTimeout time.Duration
	// MaxInflightPerPhone caps this process's uploads in flight to Meta for
	// one phone number id; 0 means no cap beyond Concurrency. A throttled
	// number also pauses this process's other uploads for it.
	MaxInflightPerPhone int
}

func (c Config) validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d must be at least 1", c.Concurrency)
	case c.AckWait <= 0:
		return fmt.Errorf("ack wait %v must be positive", c.AckWait)
	case c.MaxDeliver < 1:
		return fmt.Errorf("max deliver %d must be at least 1", c.MaxDeliver)
	case c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("backoff base %v must be positive and at most backoff max %v", c.BackoffBase, c.BackoffMax)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %v must not be negative", c.ShutdownTimeout)
	case c.MaxInflightPerPhone < 0:
		return fmt.Errorf("max in flight per phone %d must not be negative", c.MaxInflightPerPhone)
	}
	return nil
}

// Deps are the services a Processor works with.
type Deps struct {
	// Graph uploads to Meta.
	Graph *graph.Client
	// Store holds the staged files.
	Store *minio.Client
	// Results is the results bucket (queue.Topology.Results).
	Results jetstream.KeyValue
	// Conn publishes results to waiting callers.
	Conn *nats.Conn
	// Log receives one line per job outcome.
	Log *slog.Logger
	// Async, if set, keeps job status records, the media-id cache and
	// webhook deliveries up to date (see async.go).
	Async *Async
	// DeadLetters, if set, receives the jobs that failed for a reason a
	// replay may overcome (see deadletter.go).
	DeadLetters *queue.DeadLetters
	// Metrics counts jobs and times their steps; nil makes a set on a
	// fresh registry.
	Metrics *Metrics
	// Tracing makes a span per job, a child of the span that published it;
	// nil traces nothing.
	Tracing trace.TracerProvider
}

// Processor handles upload jobs.
type Processor struct {
	cfg    Config
	phones *phoneLimiter
	Deps
}

// New returns a Processor.
func New(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	if deps.Graph == nil || deps.Store == nil || deps.Results == nil || deps.Conn == nil || deps.Log == nil {
		return nil, errors.New("process: every dependency is required")
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if deps.Tracing == nil {
		deps.Tracing = noop.NewTracerProvider()
	}
	return &Processor{cfg: cfg, phones: newPhoneLimiter(cfg.MaxInflightPerPhone), Deps: deps}, nil
}

// Timeouts of the steps around the upload.
const (
	// settleTimeout bounds recording, answering, deleting and acking once a
	// job's outcome is known.
	settleTimeout = 15 * time.Second
	// recordAttempts is how often writing a result is tried: backing off
	// from 100 ms to 2 s, about 11 s in all, enough to ride out a NATS
	// restart without uploading again.
	recordAttempts = 10
)

// delivery is one delivery of one job.
type delivery struct {
	msg     jetstream.Msg
	job     job.Job
	attempt int
	replyTo string
	start   time.Time
	log     *slog.Logger
	// keepStaged keeps the staged file for a dead-lettered job's replay.
	keepStaged bool
	// status is the job's status record as markProcessing left it.
	status *job.Version
}

// failure is a failed attempt, classified once where it happened.
type failure struct {
	code       string         // the result's error code if this attempt is the job's last
	message    string         // for the caller
	meta       *job.MetaError // Meta's error object, if Meta answered with one
	retry      bool           // another attempt may succeed
	throttled  bool           // Meta asked us to slow down
	retryAfter time.Duration  // Meta's Retry-After
	err        error          // the cause, for the log
}

func (p *Processor) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		p.Log.Error("message is not a JetStream delivery; ignored", "subject", msg.Subject(), "err", err)
		return
	}
	p.Metrics.since(stageQueued, md.Timestamp)
	j, err := decode(msg.Headers(), msg.Data())
	if err != nil {
		p.Log.Error("malformed job; terminated", "stream_seq", md.Sequence.Stream, "err", err)
		if err := msg.TermWithReason("malformed job: " + err.Error()); err != nil {
			p.Log.Warn("terminating a malformed job failed", "stream_seq", md.Sequence.Stream, "err", err)
		}
		return
	}
	d := &delivery{
		msg: msg, job: j, attempt: int(md.NumDelivered), start: time.Now(),
		replyTo: msg.Headers().Get(job.HeaderReplyTo),
		log:     p.Log.With("job_id", j.ID, "phone_number_id", j.PhoneNumberID, "attempt", md.NumDelivered),
	}
	ctx, endSpan := p.startSpan(ctx, d)
	defer endSpan()

	// A recorded result means an earlier delivery finished the job: answer
	// from the record and never upload twice.
	stop := heartbeat(msg, p.cfg.AckWait/3, d.log)
	lookupStart := time.Now()
	prev, err := p.lookup(ctx, j.ID)
	p.Metrics.since(stageLookup, lookupStart)
	var mediaID string
	var f *failure
	switch {
	case err != nil:
		f = &failure{code: job.CodeInternal, message: "the results store is unavailable", retry: true, err: err}
	case prev == nil:
		processing := p.markProcessing(ctx, d)
		mediaID, f = p.upload(ctx, d)
		processing()
	}
	stop()

	// Settling is not cut short by a stop: an upload that finished is always
	// recorded and answered.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	switch {
	case prev != nil:
		d.log.Info("job already has a result; answering from the record", "status", prev.Status)
		// A dead-lettered job's staged file stays for its replay.
		d.keepStaged = prev.Status == job.StatusFailed && prev.Error != nil && replayable(prev.Error.Code) && p.DeadLetters != nil
		p.answer(sctx, d, *prev)
	case f == nil:
		p.settle(sctx, d, job.Result{JobID: j.ID, Status: job.StatusSucceeded, MediaID: mediaID})
	case ctx.Err() != nil:
		// Stopping cut the attempt short; it says nothing about the job.
		p.Metrics.outcome("handed_back")
		d.log.Info("stopping; job handed back to the queue", "err", f.err)
		if err := msg.Nak(); err != nil {
			d.log.Warn("handing the job back failed; it returns after the ack wait", "err", err)
		}
	case f.retry && d.attempt < p.cfg.MaxDeliver:
		delay := retryDelay(d.attempt, p.cfg.BackoffBase, p.cfg.BackoffMax, f)
		p.Metrics.outcome("retried")
		if f.throttled {
			p.phones.pause(j.PhoneNumberID, delay)
		}
		d.log.Warn("attempt failed; will retry", "code", f.code, "err", f.err, "retry_in", delay, "max_deliver", p.cfg.MaxDeliver)
		if err := msg.NakWithDelay(delay); err != nil {
			d.log.Warn("handing the job back failed; it returns after the ack wait", "err", err)
		}
	default:
		message := f.message
		if f.retry {
			message = fmt.Sprintf("%s; gave up after %d attempts", f.message, d.attempt)
		}
		d.log.Warn("job failed", "code", f.code, "err", f.err)
		p.deadLetter(sctx, d, f.code, message)
		p.settle(sctx, d, job.Result{JobID: j.ID, Status: job.StatusFailed,
			Error: &job.Error{Code: f.code, Message: message, Meta: f.meta}})
	}
}

// keyRE is what the results bucket accepts as a key.
var keyRE = regexp.MustCompile(`^[-_=.a-zA-Z0-9]{1,128}$`)

func decode(h nats.Header, data []byte) (job.Job, error) {
	j, err := job.Decode(h, data)
	if err != nil {
		return job.Job{}, err
	}
	if err := j.Validate(); err != nil {
		return job.Job{}, err
	}
	if !keyRE.MatchString(j.ID) {
		return job.Job{}, fmt.Errorf("job id %q is not a valid result key", j.ID)
	}
	return j, nil
}

// heartbeat tells JetStream the job is still being worked on, every interval,
// until the returned function is called.
func heartbeat(msg jetstream.Msg, every time.Duration, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(every, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Warn("progress heartbeat failed", "err", err)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// lookup returns the job's recorded terminal result, if there is one.
func (p *Processor) lookup(ctx context.Context, id string) (*job.Result, error) {
	e, err := p.Results.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up result: %w", err)
	}
	var r job.Result
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("decode recorded result: %w", err)
	}
	if !r.Status.Terminal() {
		return nil, nil
	}
	return &r, nil
}

// upload streams the staged file to Meta.
func (p *Processor) upload(ctx context.Context, d *delivery) (string, *failure) {
	j := d.job
	token := p.cfg.Tokens.For(j.PhoneNumberID)
	if token == "" {
		return "", &failure{code: job.CodeMetaAuth, message: "no Meta access token is configured for this phone number id",
			err: errors.New("no access token configured")}
	}
	body, closeBody, f := p.open(ctx, j)
	if f != nil {
		return "", f
	}
	defer closeBody()
	release, err := p.phones.acquire(ctx, j.PhoneNumberID)
	if err != nil {
		return "", &failure{code: job.CodeMetaUnavailable, message: "the upload was not sent", retry: true, err: err}
	}
	defer release()
	uploadStart := time.Now()
	id, err := p.Graph.Upload(ctx, graph.UploadRequest{
		PhoneNumberID: j.PhoneNumberID, Token: token, Type: j.Type, Filename: j.Filename,
		Size: j.Size, Body: newVerifier(body, j.Size, j.SHA256),
	})
	if errors.Is(err, errDigest) {
		return "", &failure{code: job.CodeInternal, message: "the staged file does not match the job", err: err}
	}
	if err != nil {
		p.Metrics.metaError(err)
		return "", graphFailure(err)
	}
	p.Metrics.since(stageUpload, uploadStart)
	return id, nil
}

// open returns the job's file: the bytes it carries, or a stream of its
// staged object.
func (p *Processor) open(ctx context.Context, j job.Job) (io.Reader, func(), *failure) {
	if j.Inline() {
		return bytes.NewReader(j.Data), func() {}, nil
	}
	fetchStart := time.Now()
	obj, err := p.Store.GetObject(ctx, j.Bucket, j.ObjectKey, minio.GetObjectOptions{})
	if err != nil {
		return nil, nil, storeFailure(err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, nil, storeFailure(err)
	}
	p.Metrics.since(stageFetch, fetchStart)
	if info.Size != j.Size {
		obj.Close()
		return nil, nil, &failure{code: job.CodeInternal, message: "the staged file does not match the job",
			err: fmt.Errorf("staged object is %d bytes, job says %d", info.Size, j.Size)}
	}
	return obj, func() { obj.Close() }, nil
}

func storeFailure(err error) *failure {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchBucket":
		return &failure{code: job.CodeStagedObjectMissing, message: "the staged file is no longer in the object store", err: err}
	}
	return &failure{code: job.CodeInternal, message: "the object store is unavailable", retry: true, err: err}
}

func graphFailure(err error) *failure {
	ge, ok := errors.AsType[*graph.Error](err)
	if !ok {
		return &failure{code: job.CodeInternal, message: "the upload could not be sent", err: err}
	}
	f := &failure{err: err, retry: ge.Retryable(), throttled: ge.Kind == graph.KindThrottled, retryAfter: ge.RetryAfter}
	if ge.HTTPStatus != 0 {
		f.meta = &job.MetaError{HTTPStatus: ge.HTTPStatus, Code: ge.Code, Subcode: ge.Subcode, Type: ge.Type,
			Message: ge.Message, Details: ge.Details, FBTraceID: ge.FBTraceID}
	}
	switch ge.Kind {
	case graph.KindAuth:
		f.code, f.message = job.CodeMetaAuth, "Meta refused the gateway's access token or permissions for this phone number id"
	case graph.KindRejected:
		f.code, f.message = job.CodeMetaRejected, "Meta rejected the upload"
	case graph.KindThrottled:
		f.code, f.message = job.CodeMetaUnavailable, "Meta is rate limiting uploads"
	default:
		f.code, f.message = job.CodeMetaUnavailable, "Meta is unavailable"
	}
	return f
}

// errDigest marks a staged file whose bytes are not the ones the job names.
var errDigest = errors.New("staged file's sha256 does not match the job")

// verifier passes a file through and fails its last read if the file's
// sha256 is not the expected one, so a corrupted staged file never reaches
// Meta complete.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	left int64
	want string
}

func newVerifier(r io.Reader, size int64, sha string) *verifier {
	return &verifier{r: r, h: sha256.New(), left: size, want: sha}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if v.left <= 0 && n > 0 {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%w: got %s", errDigest, got)
		}
	}
	return n, err
}

// settle records a new result and answers, writing the record while the
// status and the cache are updated: the caller is answered once all three
// are written.
func (p *Processor) settle(ctx context.Context, d *delivery, r job.Result) {
	start := time.Now()
	r.Attempts, r.CompletedAt = d.attempt, start.UTC()
	recorded := make(chan error, 1)
	go func() { recorded <- p.record(ctx, r) }()
	p.publishOutcome(ctx, d, r)
	if err := <-recorded; err != nil {
		d.log.Error("recording the result failed; answering anyway", "err", err)
	}
	p.Metrics.since(stageSettle, start)
	p.finish(ctx, d, r)
}

// record writes the result, retrying briefly: the upload it describes must
// not be repeated because a write failed.
func (p *Processor) record(ctx context.Context, r job.Result) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	wait := 100 * time.Millisecond
	for i := 1; ; i++ {
		_, err = p.Results.Put(ctx, r.JobID, data)
		if err == nil || i == recordAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// answer updates the job's status and the media-id cache from a recorded
// result, then finishes the job.
func (p *Processor) answer(ctx context.Context, d *delivery, r job.Result) {
	p.publishOutcome(ctx, d, r)
	p.finish(ctx, d, r)
}

// finish sends the result to the waiting caller, queues the job's webhook,
// deletes the staged file and acknowledges the job. The result is recorded
// by then: a redelivery after a crash before the ack does the steps again
// from the record.
func (p *Processor) finish(ctx context.Context, d *delivery, r job.Result) {
	p.reply(d.replyTo, r, d.log)
	p.queueWebhook(ctx, d, r)
	if d.keepStaged && !d.job.Inline() {
		d.log.Info("staged file kept for the dead-lettered job's replay", "object_key", d.job.ObjectKey)
	} else if err := p.removeStaged(ctx, d.job); err != nil {
		// The result is recorded: the redelivery answers from it and tries
		// the deletion again, so the file does not outlive the store's
		// outage.
		delay := retryDelay(d.attempt, p.cfg.BackoffBase, p.cfg.BackoffMax, &failure{retry: true})
		d.log.Warn("deleting the staged file failed; the job comes back to retry it", "object_key", d.job.ObjectKey, "err", err, "retry_in", delay)
		if err := d.msg.NakWithDelay(delay); err != nil {
			d.log.Warn("handing the job back failed; it returns after the ack wait", "err", err)
		}
		return
	}
	if err := d.msg.DoubleAck(ctx); err != nil {
		d.log.Warn("ack failed; a redelivery will be answered from the record", "err", err)
	}
	p.Metrics.outcome(string(r.Status))
	p.Metrics.since(stageTotal, d.start)
	attrs := []any{"status", r.Status, "duration", time.Since(d.start)}
	if r.MediaID != "" {
		attrs = append(attrs, "media_id", r.MediaID)
	}
	if r.Error != nil {
		attrs = append(attrs, "code", r.Error.Code)
	}
	d.log.Info("job done", attrs...)
}
