package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

// publisher publishes jobs the way ingest does, each under its job id as
// Nats-Msg-Id, retrying a failed publish with the same id until it is
// acknowledged, and records every acknowledged id.
type publisher struct {
	js jetstream.JetStream

	mu      sync.Mutex
	acked   []string
	retries int
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// run publishes until stop is closed. The job in hand when stop closes is
// still published to the end, so no job is left stored but unacknowledged.
func (p *publisher) run(stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		j := job.Job{
			ID: job.NewID(), PhoneNumberID: "15550001234", Bucket: "sigfollow-staging", Type: "image/png",
			Size: 1024, SHA256: strings.Repeat("a", 64), Filename: "photo.png", CreatedAt: time.Now().UTC(),
		}
		j.ObjectKey = "staged/" + j.ID
		data, err := json.Marshal(j)
		if err != nil {
			return err
		}
		if err := p.publish(j, data); err != nil {
			return err
		}
	}
}

func (p *publisher) publish(j job.Job, data []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := p.js.Publish(ctx, job.Subject(j.PhoneNumberID), data, jetstream.WithMsgID(j.ID), jetstream.WithExpectStream(job.Stream))
		cancel()
		if err == nil {
			p.mu.Lock()
			p.acked = append(p.acked, j.ID)
			p.mu.Unlock()
			return nil
		}
		p.mu.Lock()
		p.retries++
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s not acknowledged after %d attempts: %w", j.ID, attempt, err)
		}
		time.Sleep(50 * time.Millisecond) // back off while a new leader is elected
	}
}

// TestClusterLeaderLoss runs the job stream at three replicas and shuts its
// leader down while jobs are being published: every job whose publish was
// acknowledged must still be in the stream exactly once, and publishing must
// carry on against the new leader.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	nodes := testenv.NATSCluster(t, 3)
	log := slog.New(slog.DiscardHandler)
	nc, err := queue.Connect(testenv.ClusterURL(nodes), "cluster-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	topo, err := queue.Declare(ctx, js, queue.Config{Replicas: 3}, log)
	if err != nil {
		t.Fatal(err)
	}

	// Every stream the topology declares, key-value buckets included, is
	// replicated on all three nodes.
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v; want 3 (a leader and 2 followers)", info.Config.Name, info.Config.Replicas, info.Cluster)
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}

	info, err := topo.Jobs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldLeader := info.Cluster.Leader
	if nodes[oldLeader] == nil {
		t.Fatalf("stream leader %q is not one of the nodes", oldLeader)
	}

	pubs := make([]*publisher, 4)
	stop := make(chan struct{})
	errs := make(chan error, len(pubs))
	for i := range pubs {
		pubs[i] = &publisher{js: js}
		go func() { errs <- pubs[i].run(stop) }()
	}
	acked := func() int {
		n := 0
		for _, p := range pubs {
			n += p.count()
		}
		return n
	}
	stopped := false
	stopPublishing := func() {
		if stopped {
			return
		}
		stopped = true
		close(stop)
		for range pubs {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stopPublishing)

	testenv.Eventually(t, 20*time.Second, func() bool { return acked() >= 200 }, "publishing did not get going")
	nodes[oldLeader].Shutdown()
	nodes[oldLeader].WaitForShutdown()
	// Counted once the node is gone: acknowledgements from here on come
	// from the remaining two.
	beforeLoss := acked()
	t.Logf("shut down stream leader %s; %d jobs acknowledged by then", oldLeader, beforeLoss)

	testenv.Eventually(t, 30*time.Second, func() bool { return acked() >= beforeLoss+200 },
		"publishing did not resume after the stream leader %s went down (%d jobs acknowledged before)", oldLeader, beforeLoss)
	stopPublishing()

	var newLeader string
	testenv.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := topo.Jobs.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		newLeader = info.Cluster.Leader
		return newLeader != "" && newLeader != oldLeader
	}, "no new stream leader after %s went down", oldLeader)

	want, retries := map[string]bool{}, 0
	for _, p := range pubs {
		retries += p.retries
		for _, id := range p.acked {
			want[id] = true
		}
	}
	t.Logf("new leader %s; %d jobs acknowledged, %d of them after the leader loss; %d publishes retried", newLeader, len(want), len(want)-beforeLoss, retries)

	seen := consumeAll(t, ctx, topo.Jobs, len(want))
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("acknowledged job %s is in the stream %d times, want exactly once", id, seen[id])
		}
	}
	for id, n := range seen {
		if !want[id] {
			t.Errorf("job %s is in the stream %d times but its publish was never acknowledged", id, n)
		}
	}
}

// consumeAll reads the stream through the workers' shared consumer,
// acknowledging each job, until it has want jobs and the stream has no more,
// and counts the jobs by id.
func consumeAll(t *testing.T, ctx context.Context, jobs jetstream.Stream, want int) map[string]int {
	t.Helper()
	cons, err := queue.DeclareConsumer(ctx, jobs, queue.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 1})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var j job.Job
			if err := json.Unmarshal(msg.Data(), &j); err != nil {
				t.Fatalf("job %q: %v", msg.Data(), err)
			}
			if id := msg.Headers().Get(nats.MsgIdHdr); id != j.ID {
				t.Errorf("job %s stored under Nats-Msg-Id %q", j.ID, id)
			}
			seen[j.ID]++
			if err := msg.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		total += n
		if n == 0 && total >= want {
			return seen
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d jobs of %d before the deadline", total, want)
		}
	}
}
