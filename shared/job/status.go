package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StatusRecord is what GET /v1/{phone}/media/jobs/{id} shows: where a job
// stands and, if it has a callback URL, how its webhook delivery went. The
// worker writes the job's states, the webhook dispatcher the delivery state.
type StatusRecord struct {
	JobID         string        `json:"job_id"`
	PhoneNumberID string        `json:"phone_number_id"`
	KeyID         string        `json:"-"`
	Status        Status        `json:"status"`
	MediaID       string        `json:"id,omitempty"`
	Error         *Error        `json:"error,omitempty"`
	Cached        bool          `json:"cached,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	CompletedAt   *time.Time    `json:"completed_at,omitempty"`
	Webhook       *WebhookState `json:"webhook,omitempty"`
}

// storedStatus keeps the fields the API does not show (the owning key).
type storedStatus struct {
	StatusRecord
	KeyID string `json:"key_id"`
}

// Webhook delivery states.
const (
	WebhookPending   = "pending"   // waiting for the job's terminal state or the next try
	WebhookDelivered = "delivered" // a try was answered 2xx
	WebhookFailed    = "failed"    // every try failed; the delivery was dead-lettered
)

// WebhookState is a job's webhook delivery, as the status endpoint shows it.
type WebhookState struct {
	URL           string     `json:"url"`
	State         string     `json:"state"`
	ID            string     `json:"webhook_id,omitempty"`
	Attempts      int        `json:"attempts"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// ErrStatusNotFound is returned for a job without a status record (never
// created, or expired).
var ErrStatusNotFound = errors.New("job: no status record")

// Statuses reads and changes status records in a key-value bucket
// (queue.Topology.Status), keyed by job id.
type Statuses struct {
	kv jetstream.KeyValue
}

// NewStatuses returns Statuses over kv.
func NewStatuses(kv jetstream.KeyValue) *Statuses { return &Statuses{kv: kv} }

// Get returns the record of job id.
func (s *Statuses) Get(ctx context.Context, id string) (*StatusRecord, error) {
	r, _, err := s.get(ctx, id)
	return r, err
}

func (s *Statuses) get(ctx context.Context, id string) (*StatusRecord, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, ErrStatusNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("job: read status %s: %w", id, err)
	}
	var st storedStatus
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("job: decode status %s: %w", id, err)
	}
	st.StatusRecord.KeyID = st.KeyID
	return &st.StatusRecord, e.Revision(), nil
}

// Update applies change to job id's record and stores it, retrying if
// another writer changed the record meanwhile. A missing record is created
// from an empty one with JobID set. If change returns false nothing is
// written.
func (s *Statuses) Update(ctx context.Context, id string, change func(*StatusRecord) bool) error {
	_, err := s.Apply(ctx, id, nil, change)
	return err
}

// Version is a record as one writer last read or wrote it: a later change
// by the same writer starts from it instead of reading the record again.
type Version struct {
	rec StatusRecord
	rev uint64
}

// NoRecord is the version of a record that does not exist yet, for a writer
// that knows it is the first (a job id it just made).
func NoRecord(id string) *Version { return &Version{rec: StatusRecord{JobID: id}} }

// Apply is Update starting from v, if v is not nil: one write instead of a
// read and a write while nobody else changed the record since v, the read
// and a retry if somebody did. It returns the version it wrote, or the
// one change was shown if it wrote nothing.
func (s *Statuses) Apply(ctx context.Context, id string, v *Version, change func(*StatusRecord) bool) (*Version, error) {
	for range 20 {
		var r *StatusRecord
		var rev uint64
		if v != nil {
			cur := v.rec
			r, rev, v = &cur, v.rev, nil
		} else {
			var err error
			r, rev, err = s.get(ctx, id)
			if errors.Is(err, ErrStatusNotFound) {
				r, err = &StatusRecord{JobID: id}, nil
			}
			if err != nil {
				return nil, err
			}
		}
		before := *r
		if !change(r) {
			return &Version{rec: before, rev: rev}, nil
		}
		r.UpdatedAt = time.Now().UTC()
		data, err := json.Marshal(storedStatus{StatusRecord: *r, KeyID: r.KeyID})
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			rev, err = s.kv.Create(ctx, id, data)
		} else {
			rev, err = s.kv.Update(ctx, id, data, rev)
		}
		if err == nil {
			return &Version{rec: *r, rev: rev}, nil
		}
		if !conflict(err) {
			return nil, fmt.Errorf("job: write status %s: %w", id, err)
		}
	}
	return nil, fmt.Errorf("job: write status %s: too many concurrent changes", id)
}

// Wait watches job id's record until done returns true for it, and
// returns that record. It returns ctx's error (and the last record seen, if
// any) when ctx is done first.
func (s *Statuses) Wait(ctx context.Context, id string, done func(*StatusRecord) bool) (*StatusRecord, error) {
	w, err := s.kv.Watch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("job: watch status %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	var last *StatusRecord
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return last, fmt.Errorf("job: watch status %s: closed", id)
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st storedStatus
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				continue
			}
			st.StatusRecord.KeyID = st.KeyID
			last = &st.StatusRecord
			if done(last) {
				return last, nil
			}
		}
	}
}

// conflict reports whether a KV write failed because the entry changed or
// appeared meanwhile.
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Settle returns the change that puts a terminal result into a record. It
// never overwrites one terminal state with another.
func Settle(r Result) func(*StatusRecord) bool {
	return func(st *StatusRecord) bool {
		if st.Status.Terminal() {
			return false
		}
		st.Status, st.MediaID, st.Error = r.Status, r.MediaID, r.Error
		t := r.CompletedAt
		if t.IsZero() {
			t = time.Now().UTC()
		}
		st.CompletedAt = &t
		return true
	}
}
