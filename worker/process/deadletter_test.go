package process_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
	"github.com/sigfollow/media/worker/process"
)

// startDLQ runs a processor with the dead-letter queue, and its dead-letter
// watch, until the test ends.
func (e *env) startDLQ(t *testing.T, cfg process.Config) *queue.DeadLetters {
	t.Helper()
	dlq := queue.NewDeadLetters(e.js, e.topo)
	p, err := process.New(cfg, process.Deps{
		Graph: e.graph, Store: e.store, Results: e.topo.Results, Conn: e.nc, DeadLetters: dlq,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx, e.cons) })
	wg.Go(func() {
		if err := p.WatchDeadLetters(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return dlq
}

// crashedDelivery takes the next job from the shared consumer and never
// answers it, as a worker killed mid-upload does.
func (e *env) crashedDelivery(t *testing.T) {
	t.Helper()
	batch, err := e.cons.Fetch(1, jetstream.FetchMaxWait(waitFor))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if n != 1 {
		t.Fatalf("fetched %d jobs, want 1 (%v)", n, batch.Error())
	}
}

func (e *env) staged(t *testing.T, j job.Job) bool {
	t.Helper()
	_, err := e.store.StatObject(t.Context(), bucket, j.ObjectKey, minio.StatObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatal(err)
	}
	return err == nil
}

func (e *env) deadLettered(t *testing.T, dlq *queue.DeadLetters, id string) (queue.DeadLetter, bool) {
	t.Helper()
	all, err := dlq.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range all {
		if dl.Job.ID == id {
			return dl, true
		}
	}
	return queue.DeadLetter{}, false
}

// TestJobWhoseLastDeliveryDiesIsDeadLettered is the gap JetStream leaves: a
// worker that dies during a job's last allowed delivery. The job must end as
// failed, answered to its caller, in the dead-letter queue with its staged
// file kept, and a replay must then upload it.
func TestJobWhoseLastDeliveryDiesIsDeadLettered(t *testing.T) {
	cases := []struct {
		name string
		// running: a worker runs when the job runs out; otherwise one
		// starts only afterwards and must still learn of it.
		running bool
	}{
		{name: "a worker is running", running: true},
		{name: "no worker running when the job ran out", running: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, queue.ConsumerConfig{AckWait: time.Second, MaxDeliver: 1})
			data := fixture(t, "image.png")
			j := e.stage(t, "5552000", "image/png", data)
			replies := e.publish(t, j, j.ID)
			e.crashedDelivery(t)

			var dlq *queue.DeadLetters
			if tc.running {
				dlq = e.startDLQ(t, e.config())
			} else {
				// A pull after the ack wait makes JetStream give up on the
				// job while no worker runs; its advisory is kept.
				testenv.Eventually(t, waitFor, func() bool {
					b, err := e.cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
					if err != nil {
						return false
					}
					for range b.Messages() {
						t.Fatal("an exhausted job was delivered again")
					}
					si, err := e.topo.Exhausted.Info(t.Context())
					return err == nil && si.State.Msgs == 1
				}, "the advisory of the exhausted job was not kept")
				dlq = e.startDLQ(t, e.config())
			}

			r := await(t, replies)
			if r.Status != job.StatusFailed || r.Error == nil || r.Error.Code != job.CodeInternal || r.JobID != j.ID {
				t.Fatalf("caller got %+v, want a failed result", r)
			}
			rec, err := e.topo.Results.Get(t.Context(), j.ID)
			if err != nil {
				t.Fatalf("no result recorded: %v", err)
			}
			var recorded job.Result
			if err := json.Unmarshal(rec.Value(), &recorded); err != nil || recorded.Status != job.StatusFailed {
				t.Fatalf("recorded %s", rec.Value())
			}
			dl, ok := e.deadLettered(t, dlq, j.ID)
			if !ok {
				t.Fatal("job not in the dead-letter queue")
			}
			if !reflect.DeepEqual(dl.Job, j) || dl.Reason != job.CodeInternal {
				t.Errorf("dead letter %+v, want job %+v", dl, j)
			}
			e.assertDrained(t)
			if !e.staged(t, j) {
				t.Fatal("the dead-lettered job's staged file was deleted; it cannot be replayed")
			}

			// Replay: the job is uploaded under its own id.
			if err := dlq.Replay(t.Context(), dl); err != nil {
				t.Fatal(err)
			}
			var done job.Result
			testenv.Eventually(t, waitFor, func() bool {
				e, err := e.topo.Results.Get(t.Context(), j.ID)
				return err == nil && json.Unmarshal(e.Value(), &done) == nil && done.Status == job.StatusSucceeded
			}, "replayed job did not succeed")
			if m, ok := e.fake.Lookup(done.MediaID); !ok || m.SHA256 != sum(data) {
				t.Errorf("Meta has %+v for the replayed job", m)
			}
			if _, still := e.deadLettered(t, dlq, j.ID); still {
				t.Error("replayed job still in the dead-letter queue")
			}
			testenv.Eventually(t, waitFor, func() bool { return !e.staged(t, j) }, "staged file left after the replay succeeded")
		})
	}
}

// TestTerminalFailuresAndTheDeadLetterQueue checks which failed jobs are
// kept for a replay: those a later attempt may fix, not those Meta refused.
func TestTerminalFailuresAndTheDeadLetterQueue(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 2})
	dlq := e.startDLQ(t, e.config())
	cases := []struct {
		name  string
		fault *fakegraph.Fault
		file  string // staged as image/jpeg
		code  string
		kept  bool // dead-lettered, staged file kept
	}{
		{name: "Meta down past the retries", fault: &fakegraph.Fault{Kind: "5xx", Count: 2}, file: "image.jpg", code: job.CodeMetaUnavailable, kept: true},
		{name: "token refused", fault: &fakegraph.Fault{Kind: "190", Count: 1}, file: "image.jpg", code: job.CodeMetaAuth, kept: true},
		// A PNG declared as JPEG: the fake, like Meta, refuses it, and a
		// replay cannot help.
		{name: "Meta rejected the file", file: "image.png", code: job.CodeMetaRejected, kept: false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				e.fake.InjectFault(*tc.fault)
				defer e.fake.ClearFaults()
			}
			j := e.stage(t, "555300"+string(rune('0'+i)), "image/jpeg", fixture(t, tc.file))
			r := await(t, e.publish(t, j, j.ID))
			if r.Status != job.StatusFailed || r.Error.Code != tc.code {
				t.Fatalf("result %+v, want failed with %s", r, tc.code)
			}
			if _, listed := e.deadLettered(t, dlq, j.ID); listed != tc.kept {
				t.Errorf("dead-lettered %v, want %v", listed, tc.kept)
			}
			testenv.Eventually(t, waitFor, func() bool { return e.staged(t, j) == tc.kept },
				"staged file kept: %v, want %v", !tc.kept, tc.kept)
		})
	}
}

// TestUploadsPerPhoneNumberAreCapped checks that one number never has more
// uploads in flight to Meta than the cap, while another number still gets
// through.
func TestUploadsPerPhoneNumberAreCapped(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 3})
	e.fake.SetLatency(150 * time.Millisecond)
	cfg := e.config()
	cfg.Concurrency, cfg.MaxInflightPerPhone = 6, 2
	e.start(t, cfg)
	data := fixture(t, "image.jpg")
	var waits []<-chan *nats.Msg
	for i := range 6 {
		phone := "5554000"
		if i == 5 {
			phone = "5554001"
		}
		j := e.stage(t, phone, "image/jpeg", data)
		waits = append(waits, e.publish(t, j, j.ID))
	}
	for _, w := range waits {
		if r := await(t, w); r.Status != job.StatusSucceeded {
			t.Fatalf("result %+v", r)
		}
	}
	st := e.fake.Stats()
	if got := st.MaxInFlightBy["5554000"]; got != 2 {
		t.Errorf("at most %d uploads in flight for one number, want exactly the cap 2", got)
	}
	if st.MaxInFlightBy["5554001"] != 1 {
		t.Errorf("the other number's upload did not reach Meta: %v", st.MaxInFlightBy)
	}
}
