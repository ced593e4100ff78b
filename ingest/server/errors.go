package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/mediatype"
	"github.com/sigfollow/media/shared/webhook"
)

// Error codes of errors that are not the client's file or form (those come
// from packages upload and mediatype).
const (
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeInvalidPhoneNumber = "invalid_phone_number_id"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeQueueUnavailable   = "queue_unavailable"
	CodeStoreUnavailable   = "storage_unavailable"
	CodeTimeout            = "upload_timeout"
	CodeInternal           = "internal_error"
	CodeRateLimited        = "rate_limited"
	CodeInvalidSignature   = "invalid_signature"
	// Asynchronous jobs, Idempotency-Key (async.go, idempotency.go).
	CodeInvalidCallbackURL    = "invalid_callback_url"
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeIdempotencyInProgress = "idempotency_key_in_use"
	CodeJobNotFound           = "job_not_found"
)

// apiError is an error with its HTTP status and the JSON body's fields.
type apiError struct {
	Status     int
	Code       string
	Message    string
	JobID      string
	RetryAfter int // seconds; 0 for none
	Meta       *job.MetaError
	Limit      int64
	Declared   string
	Detected   string
	cause      error // logged, never shown
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }
func (e *apiError) Unwrap() error { return e.cause }

// body is the JSON error response:
// {"error":{"code","message","request_id",...}}.
type body struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	JobID     string         `json:"job_id,omitempty"`
	Declared  string         `json:"declared_type,omitempty"`
	Detected  string         `json:"detected_type,omitempty"`
	Limit     int64          `json:"limit_bytes,omitempty"`
	Meta      *job.MetaError `json:"meta,omitempty"`
}

// toAPIError maps every error a handler can return to its response. It is
// the one place that decides HTTP statuses.
func toAPIError(err error) *apiError {
	var (
		ae  *apiError
		ue  *upload.Error
		me  *mediatype.Error
		he  *echo.HTTPError
		jer *job.Error
		wue *webhook.URLError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, apikey.ErrMissing), errors.Is(err, apikey.ErrInvalid):
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error()}
	case errors.As(err, &ue):
		status := http.StatusBadRequest
		if ue.Code == upload.CodeRequestTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		return &apiError{Status: status, Code: ue.Code, Message: ue.Message, cause: ue.Err}
	case errors.As(err, &me):
		status := http.StatusBadRequest
		if me.Reason == mediatype.ReasonTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		return &apiError{Status: status, Code: string(me.Reason), Message: me.Error(), Declared: me.Declared, Detected: me.Detected, Limit: me.Limit}
	case errors.As(err, &wue):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidCallbackURL, Message: wue.Error()}
	case errors.As(err, &jer):
		return resultError(jer)
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return &apiError{Status: he.Code, Code: CodeNotFound, Message: "no such route"}
		case http.StatusMethodNotAllowed:
			return &apiError{Status: he.Code, Code: CodeMethodNotAllowed, Message: "method not allowed on this route"}
		}
		return &apiError{Status: he.Code, Code: "http_" + strconv.Itoa(he.Code), Message: fmt.Sprint(he.Message), cause: he.Internal}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; quote the request id when reporting it", cause: err}
}

// resultError maps a job's failure, as the worker reported it.
func resultError(e *job.Error) *apiError {
	ae := &apiError{Code: e.Code, Message: e.Message, Meta: e.Meta}
	switch e.Code {
	case job.CodeMetaRejected:
		// Meta refused the file or a parameter: the client's to fix.
		ae.Status = http.StatusBadRequest
	case job.CodeMetaAuth, job.CodeMetaUnavailable:
		// Meta refused our token or kept failing: not the client's fault.
		ae.Status = http.StatusBadGateway
	default:
		ae.Status = http.StatusInternalServerError
	}
	return ae
}

// errorHandler writes err as the JSON error response and logs the errors
// that are ours rather than the client's.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client went away; there is no one to answer.
			c.Response().Status = 499
			return
		}
		ae := toAPIError(err)
		rid := requestID(c)
		if ae.Status >= 500 {
			log.Error("request failed", "request_id", rid, "status", ae.Status, "code", ae.Code, "job_id", ae.JobID, "err", err)
		}
		if ae.Status == http.StatusUnauthorized {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sigfollow"`)
		}
		if ae.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
		b := body{Error: errorBody{
			Code: ae.Code, Message: ae.Message, RequestID: rid, JobID: ae.JobID,
			Declared: ae.Declared, Detected: ae.Detected, Limit: ae.Limit, Meta: ae.Meta,
		}}
		var werr error
		if c.Request().Method == http.MethodHead {
			werr = c.NoContent(ae.Status)
		} else {
			werr = c.JSON(ae.Status, b)
		}
		if werr != nil {
			log.Debug("writing error response", "request_id", rid, "err", werr)
		}
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
