package process_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
	"github.com/sigfollow/media/worker/process"
)

// startAsync runs a processor that keeps job statuses, the media-id cache
// and webhook deliveries.
func (e *env) startAsync(t *testing.T) {
	t.Helper()
	p, err := process.New(e.config(), process.Deps{
		Graph: e.graph, Store: e.store, Results: e.topo.Results, Conn: e.nc,
		Log:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Async: &process.Async{Statuses: job.NewStatuses(e.topo.Status), Cache: e.topo.Cache, JS: e.js},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, e.cons); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// deliveries returns the webhook deliveries queued so far.
func (e *env) deliveries(t *testing.T) []job.Delivery {
	t.Helper()
	info, err := e.topo.Webhooks.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []job.Delivery
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.topo.Webhooks.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		var d job.Delivery
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestOutcomesReachStatusCacheAndWebhooks(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 3})
	e.startAsync(t)
	statuses := job.NewStatuses(e.topo.Status)

	t.Run("success", func(t *testing.T) {
		data := fixture(t, "image.jpg")
		j := e.stage(t, "5550100", "image/jpeg", data)
		j.CallbackURL = "https://hooks.example.com/ok"
		r := await(t, e.publish(t, j, j.ID))
		if r.Status != job.StatusSucceeded {
			t.Fatalf("result %+v", r)
		}
		st, err := statuses.Get(t.Context(), j.ID)
		if err != nil || st.Status != job.StatusSucceeded || st.MediaID != r.MediaID || st.CompletedAt == nil || st.PhoneNumberID != j.PhoneNumberID {
			t.Errorf("status %+v (%v)", st, err)
		}
		entry, err := e.topo.Cache.Get(t.Context(), job.CacheKey(j.PhoneNumberID, j.Type, j.SHA256))
		var c job.CacheEntry
		if err == nil {
			err = json.Unmarshal(entry.Value(), &c)
		}
		if err != nil || c.MediaID != r.MediaID || c.JobID != j.ID {
			t.Errorf("cache entry %+v (%v), want media id %s", c, err, r.MediaID)
		}
		testenv.Eventually(t, waitFor, func() bool { return len(e.deliveries(t)) == 1 }, "no webhook delivery queued")
		d := e.deliveries(t)[0]
		if d.ID != job.WebhookID(j.ID) || d.URL != j.CallbackURL || d.KeyID != j.KeyID ||
			d.Event.Type != job.EventSucceeded || d.Event.Data.MediaID != r.MediaID {
			t.Errorf("delivery %+v", d)
		}
	})

	t.Run("failure is not cached", func(t *testing.T) {
		e.fake.InjectFault(fakegraph.Fault{Kind: "190", Count: 1})
		data := []byte("refused by Meta\n")
		j := e.stage(t, "5550101", "text/plain", data)
		j.CallbackURL = "https://hooks.example.com/failed"
		r := await(t, e.publish(t, j, j.ID))
		if r.Status != job.StatusFailed {
			t.Fatalf("result %+v", r)
		}
		if st, err := statuses.Get(t.Context(), j.ID); err != nil || st.Status != job.StatusFailed || st.Error == nil || st.Error.Code != job.CodeMetaAuth {
			t.Errorf("status %+v (%v)", st, err)
		}
		if _, err := e.topo.Cache.Get(t.Context(), job.CacheKey(j.PhoneNumberID, j.Type, j.SHA256)); err != jetstream.ErrKeyNotFound {
			t.Errorf("a failed upload is in the cache (%v)", err)
		}
		testenv.Eventually(t, waitFor, func() bool { return len(e.deliveries(t)) == 2 }, "no webhook delivery queued")
		if d := e.deliveries(t)[1]; d.Event.Type != job.EventFailed || d.Event.Data.Error == nil || d.Event.Data.Error.Code != job.CodeMetaAuth {
			t.Errorf("delivery %+v", d)
		}
	})
}

// TestRecordedResultStillGetsItsWebhook: a worker that recorded the result
// and died before queueing the webhook leaves the job to a redelivery,
// which answers from the record, uploads nothing, and queues the webhook.
func TestRecordedResultStillGetsItsWebhook(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 3})
	data := fixture(t, "image.png")
	j := e.stage(t, "5550102", "image/png", data)
	j.CallbackURL = "https://hooks.example.com/recorded"
	rec, _ := json.Marshal(job.Result{JobID: j.ID, Status: job.StatusSucceeded, MediaID: "1111", Attempts: 1, CompletedAt: time.Now().UTC()})
	if _, err := e.topo.Results.Put(t.Context(), j.ID, rec); err != nil {
		t.Fatal(err)
	}
	e.startAsync(t)
	if r := await(t, e.publish(t, j, j.ID)); r.MediaID != "1111" {
		t.Fatalf("result %+v, want the recorded one", r)
	}
	testenv.Eventually(t, waitFor, func() bool { return len(e.deliveries(t)) == 1 }, "no webhook delivery queued")
	if d := e.deliveries(t)[0]; d.Event.Data.MediaID != "1111" {
		t.Errorf("delivery %+v", d)
	}
	if n := e.fake.Stats().Uploads; n != 0 {
		t.Errorf("Meta got %d uploads for a job with a recorded result", n)
	}
}
