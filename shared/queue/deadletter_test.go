package queue_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

func deadLetterJob(i int) job.Job {
	return job.Job{
		ID: job.NewID(), PhoneNumberID: fmt.Sprintf("55590%02d", i), Bucket: "b", ObjectKey: fmt.Sprintf("staging/x/%d", i),
		Type: "image/jpeg", Size: 10, SHA256: fmt.Sprintf("%064d", i), CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
}

// TestDeadLetters adds, lists, finds, replays and drops dead-lettered jobs
// on a real JetStream server.
func TestDeadLetters(t *testing.T) {
	_, js := testenv.JetStream(t, testenv.NATS(t))
	ctx := t.Context()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dlq := queue.NewDeadLetters(js, topo)

	jobs := []job.Job{deadLetterJob(1), deadLetterJob(2), deadLetterJob(3)}
	for i, j := range jobs {
		if err := dlq.Add(ctx, j, uint64(10+i), 8, job.CodeMetaUnavailable, "Meta is unavailable"); err != nil {
			t.Fatal(err)
		}
	}
	// Adding the same job from the same delivery again stores it once.
	if err := dlq.Add(ctx, jobs[0], 10, 8, job.CodeMetaUnavailable, "again"); err != nil {
		t.Fatal(err)
	}
	// A failed result the replay must forget.
	res, _ := json.Marshal(job.Result{JobID: jobs[1].ID, Status: job.StatusFailed})
	if _, err := topo.Results.Put(ctx, jobs[1].ID, res); err != nil {
		t.Fatal(err)
	}

	all, err := dlq.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("listed %d dead letters, want 3: %+v", len(all), all)
	}
	for i, dl := range all {
		if !reflect.DeepEqual(dl.Job, jobs[i]) || dl.Reason != job.CodeMetaUnavailable || dl.Deliveries != 8 || dl.Message != "Meta is unavailable" {
			t.Errorf("entry %d: %+v, want job %+v", i, dl, jobs[i])
		}
	}

	t.Run("replay", func(t *testing.T) {
		dl, err := dlq.Find(ctx, jobs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := dlq.Replay(ctx, dl); err != nil {
			t.Fatal(err)
		}
		raw, err := topo.Jobs.GetLastMsgForSubject(ctx, job.Subject(jobs[1].PhoneNumberID))
		if err != nil {
			t.Fatalf("replayed job not in the job stream: %v", err)
		}
		got, err := job.Decode(raw.Header, raw.Data)
		if err != nil || !reflect.DeepEqual(got, jobs[1]) {
			t.Errorf("replayed %s, want %+v", raw.Data, jobs[1])
		}
		if _, err := topo.Results.Get(ctx, jobs[1].ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("the failed result is still recorded (%v); a worker would answer from it instead of uploading", err)
		}
		if _, err := dlq.Find(ctx, jobs[1].ID); !errors.Is(err, queue.ErrNotDeadLettered) {
			t.Errorf("replayed job still dead-lettered: %v", err)
		}
	})
	t.Run("drop", func(t *testing.T) {
		dl, err := dlq.Find(ctx, jobs[2].ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := dlq.Delete(ctx, dl.Seq); err != nil {
			t.Fatal(err)
		}
		left, err := dlq.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].Job.ID != jobs[0].ID {
			t.Errorf("left %+v, want only %s", left, jobs[0].ID)
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		if _, err := dlq.Find(ctx, "nope"); !errors.Is(err, queue.ErrNotDeadLettered) {
			t.Errorf("got %v", err)
		}
	})
}
