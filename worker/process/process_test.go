package process_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
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
	"github.com/sigfollow/media/worker/graph"
	"github.com/sigfollow/media/worker/process"
)

const (
	bucket = "sigfollow-staging"
	token  = "EAAG-default-token"
	// phoneOwnToken has its own token, at the fake and in the worker.
	phoneOwnToken = "5550001"
	ownToken      = "EAAG-phone-token"
	// waitFor bounds every wait for the pipeline to act.
	waitFor = 20 * time.Second
)

// env is one pipeline: JetStream, MinIO and the fake Graph API, with the
// shared consumer declared.
type env struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    *queue.Topology
	cons    jetstream.Consumer
	store   *minio.Client
	fake    *fakegraph.Server
	graph   *graph.Client
	ackWait time.Duration
	maxDel  int
}

func newEnv(t *testing.T, cc queue.ConsumerConfig) *env {
	t.Helper()
	m := testenv.MinIO(t)
	store := m.Client(t, bucket)
	nc, js := testenv.JetStream(t, testenv.NATS(t))
	ctx := t.Context()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := queue.DeclareConsumer(ctx, topo.Jobs, cc)
	if err != nil {
		t.Fatal(err)
	}
	fake, base := testenv.FakeGraph(t, fakegraph.Config{Token: token, PhoneTokens: map[string]string{phoneOwnToken: ownToken}})
	g, err := graph.New(graph.Config{BaseURL: base, Version: "v23.0", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{nc: nc, js: js, topo: topo, cons: cons, store: store, fake: fake, graph: g,
		ackWait: cc.AckWait, maxDel: cc.MaxDeliver}
}

// config is a processor configuration with tiny backoffs, so retries run at
// once.
func (e *env) config() process.Config {
	return process.Config{
		Tokens:      process.Tokens{Default: token, PerPhone: map[string]string{phoneOwnToken: ownToken}},
		Concurrency: 2, AckWait: e.ackWait, MaxDeliver: e.maxDel,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
	}
}

// start runs a processor until the returned stop is called or the test ends.
func (e *env) start(t *testing.T, cfg process.Config) (stop func()) {
	t.Helper()
	p, err := process.New(cfg, process.Deps{
		Graph: e.graph, Store: e.store, Results: e.topo.Results, Conn: e.nc,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, e.cons); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../shared/mediatype/testdata/accept/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// stage puts data in the object store, as ingest does, and returns its job.
func (e *env) stage(t *testing.T, phone, mime string, data []byte) job.Job {
	t.Helper()
	j := job.Job{
		ID: job.NewID(), PhoneNumberID: phone, Bucket: bucket, Type: mime,
		Size: int64(len(data)), SHA256: sum(data), Filename: "upload.bin", KeyID: "test-key",
		CreatedAt: time.Now().UTC(),
	}
	j.ObjectKey = "staging/" + j.ID
	_, err := e.store.PutObject(t.Context(), bucket, j.ObjectKey, bytes.NewReader(data), j.Size,
		minio.PutObjectOptions{ContentType: mime})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// carry returns a job that carries data itself, as ingest makes for a
// small file.
func (e *env) carry(phone, mime string, data []byte) job.Job {
	return job.Job{
		ID: job.NewID(), PhoneNumberID: phone, Type: mime, Data: bytes.Clone(data),
		Size: int64(len(data)), SHA256: sum(data), Filename: "upload.bin", KeyID: "test-key",
		CreatedAt: time.Now().UTC(),
	}
}

// publish sends j as ingest does, with msgID as its Nats-Msg-Id, and returns
// the channel its result will arrive on.
func (e *env) publish(t *testing.T, j job.Job, msgID string) <-chan *nats.Msg {
	t.Helper()
	msg, err := job.NewMsg(job.Subject(j.PhoneNumberID), j)
	if err != nil {
		t.Fatal(err)
	}
	return e.publishMsg(t, msg, msgID)
}

func (e *env) publishRaw(t *testing.T, subject string, data []byte, msgID string) <-chan *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = data
	return e.publishMsg(t, msg, msgID)
}

// publishMsg sends msg with msgID as its Nats-Msg-Id and a reply inbox,
// and returns the channel its result will arrive on.
func (e *env) publishMsg(t *testing.T, msg *nats.Msg, msgID string) <-chan *nats.Msg {
	t.Helper()
	inbox := e.nc.NewInbox()
	replies := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Header.Set(job.HeaderReplyTo, inbox)
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	return replies
}

func await(t *testing.T, replies <-chan *nats.Msg) job.Result {
	t.Helper()
	select {
	case m := <-replies:
		var r job.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("reply %q: %v", m.Data, err)
		}
		return r
	case <-time.After(waitFor):
		t.Fatal("no result within", waitFor)
	}
	return job.Result{}
}

// assertSettled checks what every finished job leaves behind: its result
// recorded as sent, its staged object deleted, and the stream empty.
func (e *env) assertSettled(t *testing.T, j job.Job, got job.Result) {
	t.Helper()
	entry, err := e.topo.Results.Get(t.Context(), j.ID)
	if err != nil {
		t.Fatalf("result of %s not recorded: %v", j.ID, err)
	}
	var rec job.Result
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != got.Status || rec.MediaID != got.MediaID || rec.Attempts != got.Attempts {
		t.Errorf("recorded %+v, sent %+v", rec, got)
	}
	// The caller is answered first; the staged object goes right after.
	testenv.Eventually(t, waitFor, func() bool {
		if j.Inline() {
			return true
		}
		_, err := e.store.StatObject(t.Context(), bucket, j.ObjectKey, minio.StatObjectOptions{})
		return minio.ToErrorResponse(err).Code == "NoSuchKey"
	}, "staged object %s not deleted", j.ObjectKey)
	e.assertDrained(t)
}

func (e *env) assertDrained(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, waitFor, func() bool {
		info, err := e.topo.Jobs.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	}, "jobs left in the stream")
}

func TestJobSucceeds(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	e.start(t, e.config())
	data := fixture(t, "image.jpg")
	j := e.stage(t, "5551234", "image/jpeg", data)

	r := await(t, e.publish(t, j, j.ID))

	if r.Status != job.StatusSucceeded || r.JobID != j.ID || r.Attempts != 1 || r.Error != nil {
		t.Fatalf("result %+v", r)
	}
	m, ok := e.fake.Lookup(r.MediaID)
	if !ok {
		t.Fatalf("media id %s is not at Meta", r.MediaID)
	}
	if m.SHA256 != sum(data) || m.MIMEType != "image/jpeg" || m.PhoneNumberID != "5551234" || m.Filename != "upload.bin" {
		t.Errorf("Meta got %+v", m)
	}
	e.assertSettled(t, j, r)
}

// TestOutcomes runs one job per case through the same pipeline, each on its
// own phone number id so the injected faults stay apart.
func TestOutcomes(t *testing.T) {
	const maxDeliver = 4
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: maxDeliver})
	e.start(t, e.config())
	text := fixture(t, "document.txt")
	tests := []struct {
		name     string
		phone    string
		mime     string
		faults   []fakegraph.Fault
		unstaged bool
		inline   bool
		tamper   bool
		status   job.Status
		code     string
		metaCode int
		attempts int
		uploads  int
	}{
		{name: "transient 5xx twice then success", phone: "100",
			faults: []fakegraph.Fault{{Kind: "5xx", Count: 2}}, status: job.StatusSucceeded, attempts: 3, uploads: 1},
		{name: "rate limited once then success", phone: "101",
			faults: []fakegraph.Fault{{Kind: "429"}}, status: job.StatusSucceeded, attempts: 2, uploads: 1},
		{name: "dropped connection then success", phone: "102",
			faults: []fakegraph.Fault{{Kind: "drop"}}, status: job.StatusSucceeded, attempts: 2, uploads: 1},
		{name: "expired token", phone: "103",
			faults: []fakegraph.Fault{{Kind: "190"}}, status: job.StatusFailed, code: job.CodeMetaAuth, metaCode: 190, attempts: 1},
		{name: "Meta keeps failing", phone: "104",
			faults: []fakegraph.Fault{{Kind: "5xx", Count: -1}}, status: job.StatusFailed, code: job.CodeMetaUnavailable, metaCode: 2, attempts: maxDeliver},
		{name: "content does not match type", phone: "105", mime: "image/png",
			status: job.StatusFailed, code: job.CodeMetaRejected, metaCode: 131053, attempts: 1},
		{name: "staged object missing", phone: "106", unstaged: true,
			status: job.StatusFailed, code: job.CodeStagedObjectMissing, attempts: 1},
		{name: "staged object altered", phone: "107", tamper: true,
			status: job.StatusFailed, code: job.CodeInternal, attempts: 1},
		{name: "phone number with its own token", phone: phoneOwnToken, status: job.StatusSucceeded, attempts: 1, uploads: 1},
		{name: "file carried in the job", phone: "108", inline: true, status: job.StatusSucceeded, attempts: 1, uploads: 1},
		{name: "carried file retried after a 5xx", phone: "109", inline: true,
			faults: []fakegraph.Fault{{Kind: "5xx"}}, status: job.StatusSucceeded, attempts: 2, uploads: 1},
		{name: "carried file altered", phone: "110", inline: true, tamper: true,
			status: job.StatusFailed, code: job.CodeInternal, attempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, f := range tt.faults {
				f.PhoneNumberID = tt.phone
				e.fake.InjectFault(f)
			}
			mime := tt.mime
			if mime == "" {
				mime = "text/plain"
			}
			var j job.Job
			if tt.inline {
				j = e.carry(tt.phone, mime, text)
			} else {
				j = e.stage(t, tt.phone, mime, text)
			}
			if tt.unstaged {
				if err := e.store.RemoveObject(t.Context(), bucket, j.ObjectKey, minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tamper {
				j.SHA256 = sum([]byte("something else"))
			}

			r := await(t, e.publish(t, j, j.ID))

			if r.Status != tt.status || r.Attempts != tt.attempts {
				t.Errorf("status %s after %d attempts, want %s after %d (result %+v)", r.Status, r.Attempts, tt.status, tt.attempts, r)
			}
			if tt.code != "" {
				switch {
				case r.Error == nil || r.Error.Code != tt.code:
					t.Errorf("error %+v, want code %s", r.Error, tt.code)
				case tt.metaCode != 0 && (r.Error.Meta == nil || r.Error.Meta.Code != tt.metaCode || r.Error.Meta.FBTraceID == ""):
					t.Errorf("Meta's error %+v, want code %d with its trace id", r.Error.Meta, tt.metaCode)
				}
			}
			var uploads int
			for _, m := range e.fake.Media() {
				if m.PhoneNumberID == tt.phone {
					uploads++
					if m.ID != r.MediaID || m.SHA256 != sum(text) {
						t.Errorf("Meta holds %+v; result %+v", m, r)
					}
				}
			}
			if uploads != tt.uploads {
				t.Errorf("%d uploads reached Meta, want %d", uploads, tt.uploads)
			}
			e.assertSettled(t, j, r)
		})
	}
}

// TestRedeliveryIsAnsweredFromTheRecord delivers a finished job again, as
// JetStream does when an ack is lost: the caller gets the recorded result and
// Meta gets no second upload.
func TestRedeliveryIsAnsweredFromTheRecord(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	e.start(t, e.config())
	data := fixture(t, "document.txt")

	t.Run("after a success", func(t *testing.T) {
		j := e.stage(t, "200", "text/plain", data)
		first := await(t, e.publish(t, j, j.ID))
		if first.Status != job.StatusSucceeded {
			t.Fatalf("first delivery: %+v", first)
		}
		again := await(t, e.publish(t, j, j.ID+"-redelivered"))
		if again.Status != first.Status || again.MediaID != first.MediaID || !again.CompletedAt.Equal(first.CompletedAt) {
			t.Errorf("redelivery answered %+v, first answer %+v", again, first)
		}
		if n := len(e.fake.Media()); n != 1 {
			t.Errorf("Meta got %d uploads, want 1", n)
		}
		e.assertDrained(t)
	})

	t.Run("result recorded before the delivery", func(t *testing.T) {
		j := e.stage(t, "201", "text/plain", data)
		want := job.Result{JobID: j.ID, Status: job.StatusSucceeded, MediaID: "1234567890123456", Attempts: 1,
			CompletedAt: time.Now().UTC().Truncate(time.Second)}
		rec, _ := json.Marshal(want)
		if _, err := e.topo.Results.Put(t.Context(), j.ID, rec); err != nil {
			t.Fatal(err)
		}
		before := e.fake.Stats().Uploads
		got := await(t, e.publish(t, j, j.ID))
		if got.MediaID != want.MediaID || got.Status != want.Status {
			t.Errorf("answered %+v, recorded %+v", got, want)
		}
		if after := e.fake.Stats().Uploads; after != before {
			t.Errorf("Meta got %d more uploads", after-before)
		}
		e.assertSettled(t, j, got)
	})
}

func TestMalformedJobIsTerminated(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	e.start(t, e.config())
	for _, body := range []string{`not json`, `{"id":"x"}`, `{"id":"a b","phone_number_id":"1","bucket":"b","object_key":"k","type":"text/plain","size":1,"sha256":"` + sum(nil) + `"}`} {
		e.publishRaw(t, job.Subject("300"), []byte(body), job.NewID())
	}
	e.assertDrained(t)
	// A good job behind them still goes through.
	j := e.stage(t, "300", "text/plain", fixture(t, "document.txt"))
	if r := await(t, e.publish(t, j, j.ID)); r.Status != job.StatusSucceeded {
		t.Errorf("result %+v", r)
	}
	ci, err := e.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 {
		t.Errorf("%d jobs redelivered; malformed jobs must end on their first delivery", ci.NumRedelivered)
	}
}

// publishMany stages and publishes n jobs for phone.
func (e *env) publishMany(t *testing.T, phone string, n int) []<-chan *nats.Msg {
	t.Helper()
	data := fixture(t, "document.txt")
	var replies []<-chan *nats.Msg
	for range n {
		j := e.stage(t, phone, "text/plain", data)
		replies = append(replies, e.publish(t, j, j.ID))
	}
	return replies
}

func awaitSuccesses(t *testing.T, replies []<-chan *nats.Msg) {
	t.Helper()
	for _, ch := range replies {
		if r := await(t, ch); r.Status != job.StatusSucceeded {
			t.Errorf("result %+v", r)
		}
	}
}

// TestProcessesShareTheConsumer runs two processes of one slot each: both
// take jobs, so two uploads run at once, and never more.
func TestProcessesShareTheConsumer(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	cfg := e.config()
	cfg.Concurrency = 1
	e.start(t, cfg)
	e.start(t, cfg)
	e.fake.SetLatency(300 * time.Millisecond)
	awaitSuccesses(t, e.publishMany(t, "400", 6))
	if st := e.fake.Stats(); st.MaxInFlight != 2 || st.Uploads != 6 {
		t.Errorf("%d uploads, at most %d at once; want 6, 2 at once", st.Uploads, st.MaxInFlight)
	}
	e.assertDrained(t)
}

// TestBusyProcessLeavesJobsQueued checks a process takes only as many jobs
// as it has free slots: the rest stay in the queue for other processes.
func TestBusyProcessLeavesJobsQueued(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	cfg := e.config()
	cfg.Concurrency = 3
	e.start(t, cfg)
	e.fake.SetLatency(time.Second)
	replies := e.publishMany(t, "401", 9)
	testenv.Eventually(t, waitFor, func() bool { return e.fake.Stats().InFlight == 3 }, "3 uploads running")
	ci, err := e.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumAckPending != 3 || ci.NumPending != 6 {
		t.Errorf("while busy with 3 uploads the process holds %d jobs and leaves %d queued; want 3 and 6", ci.NumAckPending, ci.NumPending)
	}
	awaitSuccesses(t, replies)
	if st := e.fake.Stats(); st.MaxInFlight != 3 {
		t.Errorf("at most %d uploads at once, want 3", st.MaxInFlight)
	}
}

// TestHeartbeatsKeepLongUploads checks an upload that outlasts the ack wait
// is not handed to anyone else meanwhile.
func TestHeartbeatsKeepLongUploads(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: time.Second, MaxDeliver: 4})
	e.start(t, e.config())
	e.start(t, e.config())
	e.fake.SetLatency(3500 * time.Millisecond)
	j := e.stage(t, "500", "text/plain", fixture(t, "document.txt"))
	r := await(t, e.publish(t, j, j.ID))
	if r.Status != job.StatusSucceeded || r.Attempts != 1 {
		t.Errorf("result %+v, want success on the first delivery", r)
	}
	if st := e.fake.Stats(); st.Uploads != 1 || st.MaxInFlight != 1 {
		t.Errorf("%d uploads, %d at once; want 1", st.Uploads, st.MaxInFlight)
	}
	e.assertSettled(t, j, r)
}

// TestStopLetsUploadsFinish stops a process during an upload that ends
// within the shutdown timeout: the job completes.
func TestStopLetsUploadsFinish(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 4})
	stop := e.start(t, e.config())
	e.fake.SetLatency(time.Second)
	j := e.stage(t, "600", "text/plain", fixture(t, "document.txt"))
	replies := e.publish(t, j, j.ID)
	testenv.Eventually(t, waitFor, func() bool { return e.fake.Stats().InFlight == 1 }, "upload started")
	stop()
	// Run returned, so the job is settled already.
	if _, err := e.topo.Results.Get(t.Context(), j.ID); err != nil {
		t.Fatalf("the process stopped before recording its upload's result: %v", err)
	}
	r := await(t, replies)
	if r.Status != job.StatusSucceeded {
		t.Errorf("result %+v", r)
	}
	e.assertSettled(t, j, r)
}

// TestStopHandsUnfinishedJobsBack stops a process whose upload outlasts the
// shutdown timeout: the job goes back to the queue at once and the next
// process finishes it.
func TestStopHandsUnfinishedJobsBack(t *testing.T) {
	e := newEnv(t, queue.ConsumerConfig{AckWait: time.Minute, MaxDeliver: 4})
	cfg := e.config()
	cfg.ShutdownTimeout = 100 * time.Millisecond
	stop := e.start(t, cfg)
	e.fake.InjectFault(fakegraph.Fault{PhoneNumberID: "700", Latency: fakegraph.Duration(3 * time.Second)})
	j := e.stage(t, "700", "text/plain", fixture(t, "document.txt"))
	replies := e.publish(t, j, j.ID)
	testenv.Eventually(t, waitFor, func() bool { return e.fake.Stats().InFlight == 1 }, "upload started")
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopping took %v with a 100ms shutdown timeout", d)
	}

	// With a one-minute ack wait, only an immediate hand-back lets the next
	// process finish the job in time.
	e.start(t, e.config())
	r := await(t, replies)
	if r.Status != job.StatusSucceeded || r.Attempts != 2 {
		t.Errorf("result %+v, want success on the second delivery", r)
	}
	e.assertSettled(t, j, r)
}
