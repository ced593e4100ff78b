package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/testenv"
)

// TestClusterLeaderLossUnderLoad runs the pipeline on a three-node
// JetStream cluster with the stream at three replicas, shuts down the job
// stream's leader while uploads are in flight, and checks that no accepted
// upload is lost or uploaded twice and that ingest serves again without a
// restart.
func TestClusterLeaderLossUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster and the whole pipeline")
	}
	nodes := testenv.NATSCluster(t, 3)
	p := startPipeline(t, pipelineOptions{workers: 2, env: map[string]string{
		"NATS_URL": testenv.ClusterURL(nodes), "NATS_REPLICAS": "3", "SYNC_TIMEOUT": "20s",
	}})
	_, js := testenv.JetStream(t, testenv.ClusterURL(nodes))

	var (
		mu       sync.Mutex
		outcomes []outcome
		killedAt time.Time
	)
	ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				data := []byte(fmt.Sprintf("upload %d from client %d at %s\n", i, c, time.Now().Format(time.RFC3339Nano)))
				status, body := p.upload(t, e2eDevKey, e2ePhone, data, "c.txt", "text/plain")
				o := outcome{status: status, data: data, at: time.Now()}
				switch status {
				case http.StatusOK:
					o.id, _ = body["id"].(string)
				case http.StatusGatewayTimeout:
					e, _ := body["error"].(map[string]any)
					o.id, _ = e["job_id"].(string)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				recovered := !killedAt.IsZero() && countOK(outcomes, killedAt) >= 20
				mu.Unlock()
				if recovered {
					stop()
				}
			}
		}()
	}

	// Let the load run, then shut down the job stream's leader.
	testenv.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return countOK(outcomes, time.Time{}) >= 20
	}, "no uploads succeeded before the leader loss")
	info, err := js.Stream(context.Background(), job.Stream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(context.Background())
	if err != nil || si.Cluster == nil || si.Cluster.Leader == "" {
		t.Fatalf("stream info %v: %v", si, err)
	}
	leader := nodes[si.Cluster.Leader]
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	leader.Shutdown()
	t.Logf("shut down %s, the leader of %s", si.Cluster.Leader, job.Stream)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if n := countOK(outcomes, killedAt); n < 20 {
		t.Fatalf("only %d uploads succeeded after the leader loss: ingest did not recover", n)
	}
	accepted := 0
	statuses := map[int]int{}
	for _, o := range outcomes {
		statuses[o.status]++
		switch o.status {
		case http.StatusOK:
			accepted++
			m, ok := p.Graph.Lookup(o.id)
			if !ok || m.SHA256 != sha256Hex(o.data) {
				t.Errorf("media %s answered 200 but Meta has %+v", o.id, m)
			}
		case http.StatusGatewayTimeout:
			accepted++ // the job completes after the answer
		case http.StatusServiceUnavailable:
			// Refused while the cluster elected a new leader: nothing was accepted.
		default:
			t.Errorf("unexpected status %d", o.status)
		}
	}
	t.Logf("statuses: %v", statuses)
	// Every accepted upload reaches Meta, 504s included. A publish whose
	// acknowledgement was lost in the election can still be stored and
	// uploaded after its client was told 503, so Meta may see more uploads
	// than were accepted, never fewer.
	testenv.Eventually(t, 60*time.Second, func() bool { return p.Graph.Stats().Uploads >= accepted && p.staged(t) == 0 },
		"accepted uploads did not all reach Meta")
	if n := p.Graph.Stats().Uploads; n != accepted {
		t.Logf("Meta received %d uploads for %d accepted (%d refused with 503)", n, accepted, statuses[http.StatusServiceUnavailable])
	}
}

// outcome is one upload's answer.
type outcome struct {
	status int
	id     string // the media id, or the job id of a 504
	data   []byte
	at     time.Time
}

// countOK counts the uploads answered 200 after a moment.
func countOK(outcomes []outcome, after time.Time) int {
	n := 0
	for _, o := range outcomes {
		if o.status == http.StatusOK && o.at.After(after) {
			n++
		}
	}
	return n
}
