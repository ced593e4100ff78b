package job_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/testenv"
)

// countingKV counts the reads of a real bucket.
type countingKV struct {
	jetstream.KeyValue
	gets int
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.gets++
	return c.KeyValue.Get(ctx, key)
}

func newStatuses(t *testing.T) (*job.Statuses, *countingKV) {
	_, js := testenv.JetStream(t, testenv.NATS(t))
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "status_test"})
	if err != nil {
		t.Fatal(err)
	}
	c := &countingKV{KeyValue: kv}
	return job.NewStatuses(c), c
}

func set(s job.Status) func(*job.StatusRecord) bool {
	return func(r *job.StatusRecord) bool { r.Status = s; return true }
}

// TestApplyWritesFromAKnownVersion: a writer that knows the record's
// version writes without reading it; a stale version costs a read and a
// retry, never a lost change.
func TestApplyWritesFromAKnownVersion(t *testing.T) {
	st, kv := newStatuses(t)
	ctx := t.Context()
	id := job.NewID()

	v, err := st.Apply(ctx, id, job.NoRecord(id), set(job.StatusQueued))
	if err != nil || kv.gets != 0 {
		t.Fatalf("creating a new record: err %v after %d reads, want none", err, kv.gets)
	}
	v, err = st.Apply(ctx, id, v, set(job.StatusProcessing))
	if err != nil || kv.gets != 0 {
		t.Fatalf("updating from the version just written: err %v after %d reads, want none", err, kv.gets)
	}

	// Another writer changes the record: the stale version is refused by
	// the store, read again, and the change applied on top.
	if err := st.Update(ctx, id, func(r *job.StatusRecord) bool { r.MediaID = "other-writer"; return true }); err != nil {
		t.Fatal(err)
	}
	kv.gets = 0
	var seen job.StatusRecord
	if _, err := st.Apply(ctx, id, v, func(r *job.StatusRecord) bool { seen = *r; r.Status = job.StatusSucceeded; return true }); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, id)
	if err != nil || got.Status != job.StatusSucceeded || got.MediaID != "other-writer" || kv.gets != 2 {
		t.Errorf("after a stale version: %+v (err %v, %d reads), want succeeded keeping the other writer's change after one read", got, err, kv.gets-1)
	}
	if seen.MediaID != "other-writer" {
		t.Errorf("the retried change saw %+v, not the other writer's record", seen)
	}

	// A "new" version of a record that exists is just as stale.
	kv.gets = 0
	if _, err := st.Apply(ctx, id, job.NoRecord(id), func(r *job.StatusRecord) bool { return r.Status == "" }); err != nil || kv.gets != 1 {
		t.Errorf("creating an existing record: err %v after %d reads, want a read and no write", err, kv.gets)
	}
	if got, _ := st.Get(ctx, id); got.Status != job.StatusSucceeded {
		t.Errorf("creating an existing record overwrote it: %+v", got)
	}
}
