package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sigfollow/media/shared/job"
)

// jobIDRE is what a job id looks like (a UUID).
var jobIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// jobStatus is GET /v1/:phoneNumberId/media/jobs/:jobId: where the job
// stands, its media id or error, and its webhook delivery. A key sees only
// the jobs of the phone numbers it may act for (checked by authenticate).
func (s *Server) jobStatus(c echo.Context) error {
	if s.async == nil {
		return echo.ErrNotFound
	}
	phone, id := c.Param("phoneNumberId"), c.Param("jobId")
	notFound := &apiError{Status: http.StatusNotFound, Code: CodeJobNotFound,
		Message: "no job " + id + " for phone number id " + phone + " (job statuses expire after a while)"}
	if !jobIDRE.MatchString(id) {
		return notFound
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	st, err := s.async.statuses.Get(ctx, id)
	if errors.Is(err, job.ErrStatusNotFound) || err == nil && st.PhoneNumberID != phone {
		return notFound
	}
	if err != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeQueueUnavailable, RetryAfter: 5,
			Message: "the job's status could not be read; retry shortly", cause: err}
	}
	return c.JSON(http.StatusOK, st)
}
