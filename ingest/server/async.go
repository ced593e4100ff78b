package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/webhook"
)

// AsyncDeps enable asynchronous jobs, GET .../media/jobs/{id}, the
// Idempotency-Key header and the media-id cache.
type AsyncDeps struct {
	// Status holds job status records (queue.Topology.Status).
	Status jetstream.KeyValue
	// Cache is the media-id cache (queue.Topology.Cache).
	Cache jetstream.KeyValue
	// Idempotency maps Idempotency-Key headers to jobs
	// (queue.Topology.Idempotency).
	Idempotency jetstream.KeyValue
	// Guard refuses callback URLs that are plainly not public.
	Guard *webhook.Guard
}

// asyncState is the server's share of AsyncDeps.
type asyncState struct {
	statuses *job.Statuses
	cache    jetstream.KeyValue
	idem     jetstream.KeyValue
	guard    *webhook.Guard
}

func newAsyncState(d *AsyncDeps) (*asyncState, error) {
	if d == nil {
		return nil, nil
	}
	if d.Status == nil || d.Cache == nil || d.Idempotency == nil || d.Guard == nil {
		return nil, errors.New("server: every field of AsyncDeps is required")
	}
	return &asyncState{statuses: job.NewStatuses(d.Status), cache: d.Cache, idem: d.Idempotency, guard: d.Guard}, nil
}

// Request fields and headers of asynchronous jobs, Idempotency-Key and the
// media-id cache.
const (
	fieldCallbackURL     = "callback_url"
	fieldCache           = "cache"
	headerPrefer         = "Prefer"
	headerIdempotencyKey = "Idempotency-Key"
	headerCache          = "Sigfollow-Cache"
	headerJobID          = "Sigfollow-Job-Id"
	headerReplayed       = "Idempotent-Replayed"
	// maxIdempotencyKey caps an Idempotency-Key's length.
	maxIdempotencyKey = 255
	// replayWait is how long a retry waits for the original request of its
	// Idempotency-Key to queue its job.
	replayWait = 10 * time.Second
)

// submission is how one POST /media is to be handled, decided after the
// upload was validated and before it is staged.
type submission struct {
	async    bool   // answer 202 once queued
	useCache bool   // a cached media id may answer
	idemKey  string // the Idempotency-Key header
	answered bool   // the response is written: nothing to stage
	release  func() // withdraws the Idempotency-Key claim
	done     bool   // the job is published or answered; keep the claim
}

// finish withdraws the Idempotency-Key claim of a request that failed
// before its job was queued, so that a retry can proceed.
func (sub *submission) finish() {
	if !sub.done && sub.release != nil {
		sub.release()
	}
}

// published marks the job as queued.
func (sub *submission) published() { sub.done = true }

// submission reads the async, cache and idempotency options, sets the job's
// callback URL, and answers at once an Idempotency-Key retry or a cache
// hit.
func (s *Server) submission(c echo.Context, key *apikey.Key, u *upload.Upload, j *job.Job) (*submission, error) {
	sub := &submission{}
	if s.async == nil {
		return sub, nil
	}
	req := c.Request()
	j.CallbackURL = strings.TrimSpace(u.Fields[fieldCallbackURL])
	if j.CallbackURL != "" {
		if err := s.async.guard.ValidateURL(j.CallbackURL); err != nil {
			return nil, err
		}
	}
	sub.async = j.CallbackURL != "" || preferAsync(req.Header.Values(headerPrefer))
	sub.useCache = cacheAllowed(req.Header.Values(echo.HeaderCacheControl), u.Fields[fieldCache])
	sub.idemKey = req.Header.Get(headerIdempotencyKey)
	if sub.idemKey != "" {
		orig, release, err := s.claimIdempotency(c.Request().Context(), key.ID, sub, *j)
		if err != nil {
			return nil, err
		}
		if orig != "" {
			sub.answered = true
			return sub, s.replay(c, sub, j.PhoneNumberID, orig)
		}
		sub.release = release
	}
	if sub.useCache {
		start := time.Now()
		hit, err := s.cacheLookup(c, *j, sub)
		s.metrics.since(stageCache, start)
		if hit {
			sub.answered, sub.done = true, true
			return sub, err
		}
		if err != nil {
			sub.finish()
			return nil, err
		}
	} else {
		c.Response().Header().Set(headerCache, "bypass")
	}
	return sub, nil
}

// preferAsync reports whether a Prefer header asks for respond-async.
func preferAsync(values []string) bool {
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), ";")
			if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

// recordQueued writes the job's first status record while the job is
// published, so the status endpoint and Idempotency-Key retries find it
// once the request is answered. The job id is new: one write creates the
// record, unless a worker was faster.
func (s *Server) recordQueued(ctx context.Context, j job.Job) error {
	if s.async == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	_, err := s.async.statuses.Apply(ctx, j.ID, job.NoRecord(j.ID), func(st *job.StatusRecord) bool {
		if st.Status != "" {
			return false // a worker was faster
		}
		*st = job.StatusRecord{JobID: j.ID, PhoneNumberID: j.PhoneNumberID, KeyID: j.KeyID, Status: job.StatusQueued,
			CreatedAt: j.CreatedAt, Webhook: webhookState(j)}
		return true
	})
	if err != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
			Message: "the upload could not be queued: the job queue is unavailable; retry shortly", cause: err}
	}
	return nil
}

func webhookState(j job.Job) *job.WebhookState {
	if j.CallbackURL == "" {
		return nil
	}
	return &job.WebhookState{URL: j.CallbackURL, State: job.WebhookPending, ID: job.WebhookID(j.ID)}
}

// accepted is the 202 answer of an asynchronous job.
type accepted struct {
	JobID     string     `json:"job_id"`
	Status    job.Status `json:"status"`
	StatusURL string     `json:"status_url"`
	MediaID   string     `json:"id,omitempty"`
	Error     *job.Error `json:"error,omitempty"`
}

func statusURL(phone, jobID string) string { return "/v1/" + phone + "/media/jobs/" + jobID }

// accept answers 202 with where to follow the job.
func (s *Server) accept(c echo.Context, st job.StatusRecord) error {
	url := statusURL(st.PhoneNumberID, st.JobID)
	if preferAsync(c.Request().Header.Values(headerPrefer)) {
		c.Response().Header().Set("Preference-Applied", "respond-async")
	}
	c.Response().Header().Set(echo.HeaderLocation, url)
	c.Response().Header().Set(headerJobID, st.JobID)
	return c.JSON(http.StatusAccepted, accepted{JobID: st.JobID, Status: st.Status, StatusURL: url,
		MediaID: st.MediaID, Error: st.Error})
}

// answerRecord answers a synchronous request from a terminal status record,
// as the original request was answered.
func (s *Server) answerRecord(c echo.Context, st *job.StatusRecord) error {
	c.Response().Header().Set(headerJobID, st.JobID)
	if st.Status == job.StatusSucceeded {
		return c.JSON(http.StatusOK, map[string]string{"id": st.MediaID})
	}
	e := st.Error
	if e == nil {
		e = &job.Error{Code: job.CodeInternal, Message: "the job failed without a reason"}
	}
	ae := resultError(e)
	ae.JobID = st.JobID
	return ae
}
