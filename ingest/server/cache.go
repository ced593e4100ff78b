package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// cacheAllowed reports whether the request lets a cached media id answer
// it: not with "Cache-Control: no-cache" (or no-store), nor with the form
// field cache=false.
func cacheAllowed(cacheControl []string, field string) bool {
	for _, v := range cacheControl {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-cache" || d == "no-store" {
				return false
			}
		}
	}
	switch strings.ToLower(strings.TrimSpace(field)) {
	case "false", "0", "no", "off":
		return false
	}
	return true
}

// cacheLookup answers the request from the media-id cache if the same bytes
// of the same type were uploaded for the same phone number within the
// retention window. A hit stages and queues nothing; it reports true once
// the answer is written. A cache that cannot be read counts as a miss.
func (s *Server) cacheLookup(c echo.Context, j job.Job, sub *submission) (bool, error) {
	if !s.nc.IsConnected() {
		// NATS is down: nothing could be queued either; let publishing
		// answer 503 without waiting here first.
		c.Response().Header().Set(headerCache, "miss")
		return false, nil
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PublishTimeout/2)
	defer cancel()
	e, err := s.async.cache.Get(ctx, job.CacheKey(j.PhoneNumberID, j.Type, j.SHA256))
	var entry job.CacheEntry
	if err == nil {
		err = json.Unmarshal(e.Value(), &entry)
	}
	if err != nil || entry.MediaID == "" {
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.log.Warn("reading the media-id cache failed; uploading", "job_id", j.ID, "err", err)
		}
		c.Response().Header().Set(headerCache, "miss")
		return false, nil
	}
	c.Response().Header().Set(headerCache, "hit")
	now := time.Now().UTC()
	st := job.StatusRecord{JobID: j.ID, PhoneNumberID: j.PhoneNumberID, KeyID: j.KeyID, Status: job.StatusSucceeded,
		MediaID: entry.MediaID, Cached: true, CreatedAt: j.CreatedAt, CompletedAt: &now, Webhook: webhookState(j)}
	if err := s.recordHit(c.Request().Context(), j, st); err != nil {
		return false, err
	}
	s.log.Info("answered from the media-id cache", "request_id", requestID(c), "job_id", j.ID,
		"phone_number_id", j.PhoneNumberID, "media_id", entry.MediaID, "cached_job_id", entry.JobID)
	if sub.async {
		return true, s.accept(c, st)
	}
	c.Response().Header().Set(headerJobID, j.ID)
	return true, c.JSON(http.StatusOK, map[string]string{"id": entry.MediaID})
}

// recordHit keeps a cache hit as a finished job, so its status can be read
// and an Idempotency-Key retry gets the same answer, and queues its webhook.
func (s *Server) recordHit(ctx context.Context, j job.Job, st job.StatusRecord) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	_, err := s.async.statuses.Apply(ctx, j.ID, job.NoRecord(j.ID), func(r *job.StatusRecord) bool { *r = st; return true })
	if err == nil && j.CallbackURL != "" {
		res := job.Result{JobID: j.ID, Status: job.StatusSucceeded, MediaID: st.MediaID, CompletedAt: *st.CompletedAt}
		err = job.PublishDelivery(ctx, s.js, job.NewDelivery(j, res, *st.CompletedAt))
	}
	if err != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
			Message: "the upload could not be queued: the job queue is unavailable; retry shortly", cause: err}
	}
	return nil
}
