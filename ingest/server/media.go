package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
)

// uploadMedia is POST /v1/:phoneNumberId/media. The key was checked by
// authenticate; from here: validate → stage → publish → wait → answer.
func (s *Server) uploadMedia(c echo.Context) error {
	key := c.Get(keyContextKey).(*apikey.Key)
	req := c.Request()
	ctx := req.Context()

	// Validate: read the multipart body in one streaming pass.
	u, err := s.recv.Receive(c.Response(), req)
	if err != nil {
		return err
	}
	defer u.Close()

	j := job.Job{
		ID: job.NewID(), PhoneNumberID: c.Param("phoneNumberId"), Bucket: s.cfg.Bucket,
		Type: u.Type.MIME, Size: u.Size, SHA256: u.SHA256, Filename: u.Filename,
		KeyID: key.ID, CreatedAt: time.Now().UTC(),
	}
	j.ObjectKey = objectKey(j)

	// Stage.
	if err := s.stage(ctx, j, u); err != nil {
		return err
	}
	u.Close() // the staged copy is all that is needed from here

	// Publish, having registered for the answer first.
	replyTo, answer, done := s.replies.expect(j.ID)
	defer done()
	if err := s.publish(ctx, j, replyTo); err != nil {
		s.unstage(j)
		return err
	}
	s.log.Info("job published", "request_id", requestID(c), "job_id", j.ID, "phone_number_id", j.PhoneNumberID,
		"type", j.Type, "size", j.Size, "key_id", key.ID)

	// Wait.
	res, err := s.await(ctx, j.ID, answer)
	if err != nil {
		return err
	}
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

// stage writes the spooled file to the object store in one PUT of known
// length.
func (s *Server) stage(ctx context.Context, j job.Job, u *upload.Upload) error {
	_, err := s.store.PutObject(ctx, j.Bucket, j.ObjectKey, u.Body(), u.Size, minio.PutObjectOptions{
		ContentType:      j.Type,
		DisableMultipart: true,
		UserMetadata:     map[string]string{"job-id": j.ID, "sha256": j.SHA256},
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// The client went away; make sure nothing half-written stays.
		s.unstage(j)
		return ctx.Err()
	}
	s.unstage(j)
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, RetryAfter: 5,
		Message: "the upload could not be staged: storage is unavailable; retry shortly", cause: err}
}

// unstage removes a staged file that no job will take care of.
func (s *Server) unstage(j job.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.RemoveObject(ctx, j.Bucket, j.ObjectKey, minio.RemoveObjectOptions{}); err != nil {
		s.log.Warn("removing staged object", "job_id", j.ID, "object", j.ObjectKey, "err", err)
	}
}

// publish hands the job to JetStream and returns once it is stored. The job
// id is the message id, so a retried publish cannot enqueue it twice.
func (s *Server) publish(ctx context.Context, j job.Job, replyTo string) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(job.Subject(j.PhoneNumberID))
	msg.Data = data
	if replyTo != "" {
		msg.Header.Set(job.HeaderReplyTo, replyTo)
	}
	// Publishing must not wait on a client that has gone away, nor hang
	// while NATS is down.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(pctx, msg, jetstream.WithMsgID(j.ID), jetstream.WithExpectStream(job.Stream)); err != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
			Message: "the upload could not be queued: the job queue is unavailable; retry shortly", cause: err}
	}
	return nil
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
