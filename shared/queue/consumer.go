package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig sizes the shared worker consumer.
type ConsumerConfig struct {
	// AckWait is how long a delivered job may go without an ack or a
	// progress heartbeat before JetStream hands it to another worker.
	AckWait time.Duration
	// MaxDeliver is how many times a job is delivered at most. Workers
	// record a failed result on the last delivery, so no job is dropped
	// silently.
	MaxDeliver int
	// MaxAckPending bounds the jobs delivered and not yet acknowledged,
	// across every worker process. Zero means 1024, far above the workers'
	// combined concurrency, so it never holds a free worker back.
	MaxAckPending int
}

// DeclareConsumer creates or updates Consumer, the durable pull consumer on
// the job stream that every worker process shares. Jobs are acknowledged one
// by one; a worker only pulls as many as it has room for.
func DeclareConsumer(ctx context.Context, jobs jetstream.Stream, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.AckWait <= 0 || cfg.MaxDeliver <= 0 {
		return nil, fmt.Errorf("queue: consumer %s: ack wait %v and max deliver %d must be positive", Consumer, cfg.AckWait, cfg.MaxDeliver)
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 1024
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "SigFollow media upload workers",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", Consumer, err)
	}
	return c, nil
}
