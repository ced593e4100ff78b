package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/tracing"
)

// uploadMedia is POST /v1/:phoneNumberId/media. The key was checked by
// authenticate; from here: validate → stage → publish → wait → answer.
func (s *Server) uploadMedia(c echo.Context) error {
	key := c.Get(keyContextKey).(*apikey.Key)
	req := c.Request()
	ctx := req.Context()

	// Validate: read the multipart body in one streaming pass, hashing it
	// for the signature if the key requires one, and check the signature
	// before anything is staged.
	bodyRead := s.watchBody(c)
	signed, err := s.startSignature(req, key)
	if err != nil {
		return err
	}
	start := time.Now()
	u, err := s.recv.Receive(c.Response(), req)
	if err != nil {
		return err
	}
	defer u.Close()
	if err := s.verify(signed); err != nil {
		return err
	}
	bodyRead()
	s.metrics.since(stageReceive, start)
	s.metrics.fileBytes.Observe(float64(u.Size))

	j := job.Job{
		ID: job.NewID(), PhoneNumberID: c.Param("phoneNumberId"), Bucket: s.cfg.Bucket,
		Type: u.Type.MIME, Size: u.Size, SHA256: u.SHA256, Filename: u.Filename,
		KeyID: key.ID, CreatedAt: time.Now().UTC(),
	}
	j.ObjectKey = objectKey(j)

	// An Idempotency-Key retry or a media-id cache hit is answered here;
	// a callback_url or Prefer: respond-async makes the job asynchronous.
	sub, err := s.submission(c, key, u, &j)
	if err != nil || sub.answered {
		return err
	}
	defer sub.finish()

	// Stage: a small file goes into the job itself, a larger one to the
	// object store.
	start = time.Now()
	if err := s.stage(ctx, &j, u); err != nil {
		return err
	}
	s.metrics.since(stageStage, start)
	u.Close() // the staged copy is all that is needed from here

	// Publish, having registered for the answer first, and write the job's
	// first status record meanwhile: a worker that takes the job before
	// the record lands writes its own, which the queued one never
	// overwrites. The answer waits for both.
	replyTo, answer, done := s.replies.expect(j.ID)
	defer done()
	start = time.Now()
	queued := make(chan error, 1)
	go func() { queued <- s.recordQueued(ctx, j) }()
	if err := s.publish(ctx, j, replyTo); err != nil {
		<-queued
		s.unstage(j)
		return err
	}
	if err := <-queued; err != nil {
		// The job is queued and its worker writes the record: failing the
		// request now would only make the client upload the file twice.
		s.log.Warn("writing the queued status record failed; the worker will write it", "job_id", j.ID, "err", err)
	}
	s.metrics.since(stagePublish, start)
	s.log.Info("job published", "request_id", requestID(c), "job_id", j.ID, "phone_number_id", j.PhoneNumberID,
		"type", j.Type, "size", j.Size, "key_id", key.ID, "trace_id", tracing.TraceID(ctx))
	sub.published()
	if sub.async {
		return s.accept(c, job.StatusRecord{JobID: j.ID, PhoneNumberID: j.PhoneNumberID, Status: job.StatusQueued})
	}

	// Wait.
	start = time.Now()
	res, err := s.await(ctx, j.ID, answer)
	if err != nil {
		return err
	}
	s.metrics.since(stageWait, start)
	c.Response().Header().Set("Sigfollow-Job-Id", j.ID)
	if res.Status != job.StatusSucceeded {
		if res.Error == nil {
			res.Error = &job.Error{Code: job.CodeInternal, Message: "the job failed without a reason"}
		}
		ae := resultError(res.Error)
		ae.JobID = j.ID
		return ae
	}
	return c.JSON(http.StatusOK, map[string]string{"id": res.MediaID})
}

// objectKey places a staged file: one prefix for all staged files (so a
// lifecycle rule can expire strays), then the day, the phone number and the
// job id.
func objectKey(j job.Job) string {
	return fmt.Sprintf("staging/%s/%s/%s", j.CreatedAt.Format("2006-01-02"), j.PhoneNumberID, j.ID)
}

// stage copies a file of at most InlineMaxBytes into the job, and writes
// a larger one to the object store in one PUT of known length.
func (s *Server) stage(ctx context.Context, j *job.Job, u *upload.Upload) error {
	if u.Size <= s.cfg.InlineMaxBytes {
		data := make([]byte, u.Size)
		if _, err := io.ReadFull(u.Body(), data); err != nil {
			return fmt.Errorf("reading the spooled upload: %w", err)
		}
		j.Data, j.Bucket, j.ObjectKey = data, "", ""
		return nil
	}
	_, err := s.store.PutObject(ctx, j.Bucket, j.ObjectKey, u.Body(), u.Size, minio.PutObjectOptions{
		ContentType:      j.Type,
		DisableMultipart: true,
		// Over plain HTTP the client would otherwise sign every 64 KiB
		// chunk's SHA-256 and the store verify each one: two more hashing
		// passes over the file. The worker checks the file's SHA-256 on its
		// way to Meta (as it must anyway), and HTTPS sends no payload hash.
		DisableContentSha256: true,
		UserMetadata:         map[string]string{"job-id": j.ID, "sha256": j.SHA256},
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// The client went away; make sure nothing half-written stays.
		s.unstage(*j)
		return ctx.Err()
	}
	s.unstage(*j)
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, RetryAfter: 5,
		Message: "the upload could not be staged: storage is unavailable; retry shortly", cause: err}
}

// unstage removes a staged file that no job will take care of. If the
// store is down it keeps trying in the background for unstageFor, without
// holding up the answer; the bucket's lifecycle rule removes what is left.
func (s *Server) unstage(j job.Job) {
	if j.Inline() {
		return
	}
	if err := s.removeStaged(j); err == nil {
		return
	}
	go func() {
		wait := time.Second
		for deadline := time.Now().Add(unstageFor); time.Now().Before(deadline); wait = min(2*wait, 15*time.Second) {
			time.Sleep(wait)
			if s.removeStaged(j) == nil {
				return
			}
		}
		s.log.Warn("staged object not removed; the bucket's lifecycle rule will expire it", "job_id", j.ID, "object", j.ObjectKey)
	}()
}

// unstageFor is how long a failed removal of a staged file is retried.
const unstageFor = 2 * time.Minute

func (s *Server) removeStaged(j job.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.store.RemoveObject(ctx, j.Bucket, j.ObjectKey, minio.RemoveObjectOptions{})
	if err != nil {
		s.log.Warn("removing staged object", "job_id", j.ID, "object", j.ObjectKey, "err", err)
	}
	return err
}

// publish hands the job to JetStream and returns once it is stored. The job
// id is the message id, so a retried publish cannot enqueue it twice.
func (s *Server) publish(ctx context.Context, j job.Job, replyTo string) error {
	msg, err := job.NewMsg(job.Subject(j.PhoneNumberID), j)
	if err != nil {
		return err
	}
	if replyTo != "" {
		msg.Header.Set(job.HeaderReplyTo, replyTo)
	}
	tracing.Inject(ctx, msg.Header)
	// Publishing must not wait on a client that has gone away, nor hang
	// while NATS is down.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(pctx, msg, jetstream.WithMsgID(j.ID), jetstream.WithExpectStream(job.Stream)); err != nil {
		return queueUnavailable(err)
	}
	return nil
}

// queueDown fails fast while the NATS connection is down: nothing could be
// looked up or queued, and waiting for a reconnect would hold the client
// for the publish timeout or longer.
func (s *Server) queueDown() error {
	if s.nc.IsConnected() {
		return nil
	}
	return queueUnavailable(fmt.Errorf("nats connection %s", s.nc.Status()))
}

func queueUnavailable(cause error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
		Message: "the upload could not be queued: the job queue is unavailable; retry shortly", cause: cause}
}

// await waits for the job's answer, up to the synchronous timeout. On
// timeout it looks once for a recorded result (an answer lost while NATS
// reconnected) before answering 504 with the job id; the job completes
// either way.
func (s *Server) await(ctx context.Context, jobID string, answer <-chan job.Result) (job.Result, error) {
	timer := time.NewTimer(s.cfg.SyncTimeout)
	defer timer.Stop()
	select {
	case res := <-answer:
		return res, nil
	case <-ctx.Done():
		return job.Result{}, ctx.Err()
	case <-timer.C:
	}
	if res, ok := s.recordedResult(ctx, jobID); ok {
		return res, nil
	}
	return job.Result{}, &apiError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, JobID: jobID,
		Message: fmt.Sprintf("no answer from Meta within %s; the upload is still queued and will complete", s.cfg.SyncTimeout)}
}

func (s *Server) recordedResult(ctx context.Context, jobID string) (job.Result, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := s.results.Get(ctx, jobID)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.log.Warn("reading job result", "job_id", jobID, "err", err)
		}
		return job.Result{}, false
	}
	var res job.Result
	if err := json.Unmarshal(e.Value(), &res); err != nil || !res.Status.Terminal() {
		return job.Result{}, false
	}
	return res, true
}
