package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/sigfollow/media/shared/job"
)

// replies routes workers' answers to the requests waiting for them. One
// wildcard subscription per process serves every request, so waiting costs
// no subscribe round trip; each request expects its answer on
// <prefix>.<job id>. nats.go restores the subscription after a reconnect.
type replies struct {
	prefix string
	sub    *nats.Subscription

	mu      sync.Mutex
	waiting map[string]chan job.Result
}

func newReplies(nc *nats.Conn) (*replies, error) {
	r := &replies{prefix: nc.NewInbox(), waiting: map[string]chan job.Result{}}
	sub, err := nc.Subscribe(r.prefix+".*", r.deliver)
	if err != nil {
		return nil, fmt.Errorf("server: subscribe to replies: %w", err)
	}
	r.sub = sub
	return r, nil
}

// expect registers interest in jobID's answer and returns the subject the
// worker should answer on, the channel it arrives on, and a function that
// withdraws the interest.
func (r *replies) expect(jobID string) (string, <-chan job.Result, func()) {
	ch := make(chan job.Result, 1)
	r.mu.Lock()
	r.waiting[jobID] = ch
	r.mu.Unlock()
	return r.prefix + "." + jobID, ch, func() {
		r.mu.Lock()
		delete(r.waiting, jobID)
		r.mu.Unlock()
	}
}

func (r *replies) deliver(m *nats.Msg) {
	jobID := strings.TrimPrefix(m.Subject, r.prefix+".")
	var res job.Result
	if err := json.Unmarshal(m.Data, &res); err != nil || res.JobID != jobID {
		return
	}
	r.mu.Lock()
	ch := r.waiting[jobID]
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- res:
		default: // a duplicate answer; the first one counts
		}
	}
}

func (r *replies) close() { _ = r.sub.Unsubscribe() }
