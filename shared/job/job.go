package job

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Stream and subject names shared by publishers and consumers.
const (
	// Stream is the JetStream stream holding upload jobs (work-queue retention).
	Stream = "MEDIA_JOBS"
	// SubjectPrefix prefixes every job subject; the phone number id follows.
	SubjectPrefix = "media.jobs"
	// HeaderReplyTo carries the core NATS subject on which a synchronous caller
	// waits for the job's result. The JetStream publish uses the message's own
	// reply subject for its acknowledgement, so the caller's inbox travels in a
	// header instead.
	HeaderReplyTo = "Sigfollow-Reply-To"
)

// Subject returns the subject a job for phoneNumberID is published on.
func Subject(phoneNumberID string) string { return SubjectPrefix + "." + phoneNumberID }

// NewID returns a new job id: a UUIDv7, so ids sort by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

var digits = regexp.MustCompile(`^[0-9]{1,32}$`)

// ValidPhoneNumberID reports whether s looks like a Meta phone number id
// (decimal digits only).
func ValidPhoneNumberID(s string) bool { return digits.MatchString(s) }

// MaxInlineBytes caps the files a job may carry inline (Job.Data): their
// messages stay well under NATS's default 1 MiB max_payload.
// DefaultInlineMaxBytes is ingest's INLINE_MAX_BYTES when it is not set.
const (
	MaxInlineBytes        = 512 << 10
	DefaultInlineMaxBytes = 128 << 10
)

// InlineMessageBytes bounds the size of a job message carrying a file of n
// bytes (see NewMsg): the file and room for the job's other fields and the
// message's headers.
func InlineMessageBytes(n int64) int64 { return n + 16<<10 }

// Job is one upload waiting to be sent to Meta. Its file is either staged
// in the object store (Bucket, ObjectKey) or, if small, carried in the job
// itself (Data).
type Job struct {
	ID            string    `json:"id"`
	PhoneNumberID string    `json:"phone_number_id"`
	Bucket        string    `json:"bucket,omitempty"`
	ObjectKey     string    `json:"object_key,omitempty"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"`
	Filename      string    `json:"filename"`
	KeyID         string    `json:"key_id"`
	CreatedAt     time.Time `json:"created_at"`
	// CallbackURL, if set, receives a signed webhook when the job reaches
	// its terminal state.
	CallbackURL string `json:"callback_url,omitempty"`
	// Data, if set, is the file itself: a small file travels in the job
	// message, stored and replicated by JetStream like the job, instead of
	// being staged in the object store. Bucket and ObjectKey are then empty.
	Data []byte `json:"data,omitempty"`
}

// Inline reports whether the job carries its file (Data) rather than
// naming a staged object.
func (j Job) Inline() bool { return j.Data != nil }

// Validate reports the first missing or malformed field.
func (j Job) Validate() error {
	switch {
	case j.ID == "":
		return errors.New("job: missing id")
	case !ValidPhoneNumberID(j.PhoneNumberID):
		return fmt.Errorf("job %s: phone number id %q is not digits", j.ID, j.PhoneNumberID)
	case j.Inline() && int64(len(j.Data)) != j.Size:
		return fmt.Errorf("job %s: carries %d bytes, size says %d", j.ID, len(j.Data), j.Size)
	case j.Inline() && (j.Bucket != "" || j.ObjectKey != ""):
		return fmt.Errorf("job %s: carries its file and names a staged object", j.ID)
	case !j.Inline() && (j.Bucket == "" || j.ObjectKey == ""):
		return fmt.Errorf("job %s: missing staged object location", j.ID)
	case j.Type == "":
		return fmt.Errorf("job %s: missing type", j.ID)
	case j.Size <= 0:
		return fmt.Errorf("job %s: size %d is not positive", j.ID, j.Size)
	case len(j.SHA256) != 64:
		return fmt.Errorf("job %s: sha256 %q is not 64 hex digits", j.ID, j.SHA256)
	}
	return nil
}

// Status is where a job stands.
type Status string

// The states a job moves through.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
)

// Terminal reports whether no further change is expected.
func (s Status) Terminal() bool { return s == StatusSucceeded || s == StatusFailed }

// Result is a job's terminal outcome, recorded by the worker before it
// acknowledges the job and sent to the waiting caller, if any.
type Result struct {
	JobID       string    `json:"job_id"`
	Status      Status    `json:"status"`
	MediaID     string    `json:"id,omitempty"`
	Error       *Error    `json:"error,omitempty"`
	Attempts    int       `json:"attempts"`
	CompletedAt time.Time `json:"completed_at"`
}

// Error codes a failed Result can carry.
const (
	// CodeMetaRejected: Meta refused the upload itself (bad parameter, type or
	// content); retrying the same file will not help.
	CodeMetaRejected = "meta_rejected"
	// CodeMetaAuth: Meta refused the gateway's access token or permissions for
	// this phone number; an operator must fix the configuration.
	CodeMetaAuth = "meta_auth_failed"
	// CodeMetaUnavailable: Meta kept failing or throttling until the job ran out
	// of attempts.
	CodeMetaUnavailable = "meta_unavailable"
	// CodeStagedObjectMissing: the staged file was no longer in the object store.
	CodeStagedObjectMissing = "staged_object_missing"
	// CodeInternal: the job could not be processed for a reason of our own.
	CodeInternal = "internal_error"
)

// Error describes why a job failed.
type Error struct {
	Code    string     `json:"code"`
	Message string     `json:"message"`
	Meta    *MetaError `json:"meta,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// MetaError is Meta's own error object, passed through so callers can act on
// Meta's code and details.
type MetaError struct {
	HTTPStatus int    `json:"http_status"`
	Code       int    `json:"code"`
	Subcode    int    `json:"error_subcode,omitempty"`
	Type       string `json:"type,omitempty"`
	Message    string `json:"message"`
	Details    string `json:"details,omitempty"`
	FBTraceID  string `json:"fbtrace_id,omitempty"`
}
