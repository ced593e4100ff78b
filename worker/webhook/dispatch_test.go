package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
	"github.com/sigfollow/media/shared/webhook"
	dispatch "github.com/sigfollow/media/worker/webhook"
)

const waitFor = 20 * time.Second

// try is one request the receiver got.
type try struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver answers each try with the next status of its script (the last
// one repeats) and records what it got.
type receiver struct {
	URL    string
	mu     sync.Mutex
	tries  []try
	script []int
	header http.Header // extra response headers on failures
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	rc := &receiver{script: script, header: http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.tries = append(rc.tries, try{header: r.Header.Clone(), body: b, at: time.Now()})
		status := rc.script[min(len(rc.tries), len(rc.script))-1]
		for k, v := range rc.header {
			if status >= 300 {
				w.Header()[k] = v
			}
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks/sigfollow"
	return rc
}

func (rc *receiver) got() []try {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]try(nil), rc.tries...)
}

type env struct {
	js       jetstream.JetStream
	topo     *queue.Topology
	statuses *job.Statuses
	keys     *apikey.Store
}

func newEnv(t *testing.T, schedule []time.Duration, maxRetryAfter time.Duration) *env {
	t.Helper()
	_, js := testenv.JetStream(t, testenv.NATS(t))
	log := slog.New(slog.DiscardHandler)
	topo, err := queue.Declare(t.Context(), js, queue.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := queue.DeclareWebhookConsumer(t.Context(), topo.Webhooks, queue.WebhookConsumerConfig{AckWait: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, topo: topo, statuses: job.NewStatuses(topo.Status), keys: apikey.NewStore(topo.Keys)}
	d, err := dispatch.New(dispatch.Config{Schedule: schedule, MaxRetryAfter: maxRetryAfter, Concurrency: 4}, dispatch.Deps{
		Client:   webhook.NewClient(webhook.Config{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: 5 * time.Second}),
		Keys:     e.keys,
		Statuses: e.statuses,
		JS:       js,
		Log:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx, cons); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// submit creates a key and queues the delivery of a succeeded job to url.
func (e *env) submit(t *testing.T, url string) (job.Delivery, *apikey.Key) {
	t.Helper()
	_, k, err := apikey.Generate("hooks", apikey.ModeTest, []string{apikey.ScopeMessagesSend}, []string{"15550001"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Create(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	j := job.Job{ID: job.NewID(), PhoneNumberID: "15550001", KeyID: k.ID, CallbackURL: url, CreatedAt: time.Now()}
	r := job.Result{JobID: j.ID, Status: job.StatusSucceeded, MediaID: "987654321", CompletedAt: time.Now().UTC()}
	if err := e.statuses.Update(t.Context(), j.ID, job.Settle(r)); err != nil {
		t.Fatal(err)
	}
	d := job.NewDelivery(j, r, r.CompletedAt)
	if err := job.PublishDelivery(t.Context(), e.js, d); err != nil {
		t.Fatal(err)
	}
	return d, k
}

func (e *env) webhookState(t *testing.T, jobID string) job.WebhookState {
	t.Helper()
	st, err := e.statuses.Get(t.Context(), jobID)
	if err != nil || st.Webhook == nil {
		return job.WebhookState{}
	}
	return *st.Webhook
}

func TestFailingReceiverGetsTheEventUnderOneWebhookID(t *testing.T) {
	e := newEnv(t, []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}, time.Minute)
	rc := newReceiver(t, 500, 503, 200)
	d, k := e.submit(t, rc.URL)

	testenv.Eventually(t, waitFor, func() bool { return e.webhookState(t, d.JobID).State == job.WebhookDelivered },
		"the webhook was never recorded as delivered")
	tries := rc.got()
	if len(tries) != 3 {
		t.Fatalf("receiver got %d tries, want 3 (two failures, then success)", len(tries))
	}
	wh, err := standardwebhooks.NewWebhook(k.WebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range tries {
		if id := tr.header.Get("webhook-id"); id != d.ID {
			t.Errorf("try %d: webhook-id %q, want %q on every try", i+1, id, d.ID)
		}
		if err := wh.Verify(tr.body, tr.header); err != nil {
			t.Errorf("try %d: signature does not verify with the Standard Webhooks library: %v", i+1, err)
		}
		if string(tr.body) != string(tries[0].body) {
			t.Errorf("try %d: body changed between tries", i+1)
		}
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			JobID   string `json:"job_id"`
			Phone   string `json:"phone_number_id"`
			MediaID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(tries[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != job.EventSucceeded || ev.Data.JobID != d.JobID || ev.Data.MediaID != "987654321" || ev.Data.Phone != "15550001" {
		t.Errorf("event %+v", ev)
	}
	if w := e.webhookState(t, d.JobID); w.Attempts != 3 || w.LastStatus != 200 || w.DeliveredAt == nil {
		t.Errorf("status shows %+v, want 3 attempts, last 200, a delivery time", w)
	}
}

func TestLastFailureIsDeadLetteredAndShownAsFailed(t *testing.T) {
	e := newEnv(t, []time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond}, time.Minute)
	rc := newReceiver(t, 500)
	d, _ := e.submit(t, rc.URL)

	testenv.Eventually(t, waitFor, func() bool { return e.webhookState(t, d.JobID).State == job.WebhookFailed },
		"the webhook was never recorded as failed")
	if n := len(rc.got()); n != 3 {
		t.Errorf("receiver got %d tries, want 3 (the schedule's length)", n)
	}
	if w := e.webhookState(t, d.JobID); w.Attempts != 3 || w.LastStatus != 500 || w.LastError == "" {
		t.Errorf("status shows %+v", w)
	}
	testenv.Eventually(t, waitFor, func() bool {
		info, err := e.topo.WebhooksDead.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	}, "the delivery is not in the dead-letter stream")
	dead, err := e.topo.WebhooksDead.GetLastMsgForSubject(t.Context(), job.WebhookDeadSubject("15550001"))
	if err != nil {
		t.Fatal(err)
	}
	var got job.Delivery
	if err := json.Unmarshal(dead.Data, &got); err != nil || got.ID != d.ID || got.URL != rc.URL {
		t.Errorf("dead letter %+v (%v), want delivery %s", got, err, d.ID)
	}
	// The work queue is empty: nothing is tried again.
	testenv.Eventually(t, waitFor, func() bool {
		info, err := e.topo.Webhooks.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	}, "the delivery stayed in the webhook stream")
}

func TestRetryAfterPostponesTheNextTry(t *testing.T) {
	e := newEnv(t, []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}, time.Minute)
	rc := newReceiver(t, 429, 200)
	rc.header.Set("Retry-After", strconv.Itoa(2))
	d, _ := e.submit(t, rc.URL)

	testenv.Eventually(t, waitFor, func() bool { return e.webhookState(t, d.JobID).State == job.WebhookDelivered },
		"the webhook was never delivered")
	tries := rc.got()
	if len(tries) != 2 {
		t.Fatalf("%d tries, want 2", len(tries))
	}
	if gap := tries[1].at.Sub(tries[0].at); gap < 2*time.Second {
		t.Errorf("second try %v after the first; Retry-After asked for 2s (the schedule for 10ms)", gap)
	}
}
