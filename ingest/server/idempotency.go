package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// idempotencyRecord is what an Idempotency-Key is remembered as: what the
// request asked for and the job it made.
type idempotencyRecord struct {
	Fingerprint string    `json:"fingerprint"`
	JobID       string    `json:"job_id"`
	CreatedAt   time.Time `json:"created_at"`
}

// fingerprint identifies what a request asks for: the phone number, the
// declared type, the file's sha256, the callback URL and the cache opt-out.
// The raw body is not used: multipart boundaries differ between retries.
func fingerprint(sub *submission, j job.Job) string {
	h := sha256.New()
	for _, f := range []string{j.PhoneNumberID, j.Type, j.SHA256, j.CallbackURL, strconv.FormatBool(sub.useCache)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// idempotencyKVKey scopes an Idempotency-Key to the API key; the header is
// hashed so that any text fits the bucket's key syntax.
func idempotencyKVKey(keyID, header string) string {
	sum := sha256.Sum256([]byte(header))
	return keyID + "." + hex.EncodeToString(sum[:])
}

// claimIdempotency claims the request's Idempotency-Key for job j, or
// returns the job an earlier request with the same key and the same
// fingerprint made. The claim is one atomic create, so two concurrent
// identical requests make one job.
func (s *Server) claimIdempotency(ctx context.Context, keyID string, sub *submission, j job.Job) (orig string, release func(), err error) {
	if len(sub.idemKey) > maxIdempotencyKey {
		return "", nil, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidIdempotencyKey,
			Message: "the Idempotency-Key header is longer than " + strconv.Itoa(maxIdempotencyKey) + " characters"}
	}
	kvKey := idempotencyKVKey(keyID, sub.idemKey)
	rec := idempotencyRecord{Fingerprint: fingerprint(sub, j), JobID: j.ID, CreatedAt: j.CreatedAt}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	unavailable := func(err error) error {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
			Message: "the Idempotency-Key could not be checked: the job queue is unavailable; retry shortly", cause: err}
	}
	rev, err := s.async.idem.Create(ctx, kvKey, data)
	if err == nil {
		return "", func() {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.async.idem.Delete(dctx, kvKey, jetstream.LastRevision(rev)); err != nil {
				s.log.Warn("withdrawing an Idempotency-Key claim failed", "job_id", j.ID, "err", err)
			}
		}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", nil, unavailable(err)
	}
	e, err := s.async.idem.Get(ctx, kvKey)
	if err != nil {
		return "", nil, unavailable(err)
	}
	var prev idempotencyRecord
	if err := json.Unmarshal(e.Value(), &prev); err != nil {
		return "", nil, err
	}
	if prev.Fingerprint != rec.Fingerprint {
		return "", nil, &apiError{Status: http.StatusUnprocessableEntity, Code: CodeIdempotencyKeyReused, JobID: prev.JobID,
			Message: "this Idempotency-Key was used for a different request (phone number, file, type, callback_url or cache option); use a new key"}
	}
	return prev.JobID, nil, nil
}

// replay answers a retry with the original job: a synchronous request gets
// the original result, waiting for it like the original if it is still
// running; an asynchronous one gets the job's current state.
func (s *Server) replay(c echo.Context, sub *submission, phone, jobID string) error {
	ctx := c.Request().Context()
	c.Response().Header().Set(headerReplayed, "true")
	c.Response().Header().Set(headerJobID, jobID)
	wait := replayWait
	if !sub.async {
		wait = max(wait, s.cfg.SyncTimeout)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	st, err := s.async.statuses.Wait(wctx, jobID, func(st *job.StatusRecord) bool {
		return sub.async || st.Status.Terminal()
	})
	switch {
	case err == nil && sub.async:
		return s.accept(c, *st)
	case err == nil:
		return s.answerRecord(c, st)
	case ctx.Err() != nil:
		return ctx.Err()
	case st == nil:
		// The original request has not queued its job (yet).
		return &apiError{Status: http.StatusConflict, Code: CodeIdempotencyInProgress, RetryAfter: 1, JobID: jobID,
			Message: "a request with this Idempotency-Key is still being processed; retry shortly"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, JobID: jobID,
			Message: "no answer from Meta in time; the upload is still queued and will complete"}
	}
	return err
}
