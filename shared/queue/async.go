package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// Names of the resources of asynchronous jobs, webhooks, Idempotency-Key and
// the media-id cache.
const (
	// StatusBucket holds each job's status record, keyed by job id.
	StatusBucket = "sigfollow_job_status"
	// CacheBucket holds media ids keyed by phone number, type and sha256.
	CacheBucket = "sigfollow_media_cache"
	// IdempotencyBucket maps Idempotency-Key headers to jobs, per API key.
	IdempotencyBucket = "sigfollow_idempotency"
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL = 24 * time.Hour
	// MaxCacheTTL is the longest media-id cache retention: Meta keeps media
	// ids 30 days, and a cached id must not outlive its media.
	MaxCacheTTL = 30*24*time.Hour - time.Hour
	// WebhookConsumer is the durable consumer every webhook dispatcher
	// shares.
	WebhookConsumer = "webhook-dispatchers"
	// webhookMaxAge is how long a delivery may wait in its stream: longer
	// than the default retry schedule's total.
	webhookMaxAge = 3 * 24 * time.Hour
)

// declareAsync declares the buckets and streams of asynchronous jobs.
func declareAsync(ctx context.Context, js jetstream.JetStream, cfg Config, t *Topology) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 7 * 24 * time.Hour
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 29 * 24 * time.Hour
	}
	buckets := []struct {
		kv   *jetstream.KeyValue
		conf jetstream.KeyValueConfig
	}{
		{&t.Status, jetstream.KeyValueConfig{Bucket: StatusBucket, Description: "status of each job, by job id", TTL: cfg.StatusTTL}},
		{&t.Cache, jetstream.KeyValueConfig{Bucket: CacheBucket, Description: "media ids by phone number, type and sha256", TTL: cfg.CacheTTL}},
		{&t.Idempotency, jetstream.KeyValueConfig{Bucket: IdempotencyBucket, Description: "Idempotency-Key to job, per API key", TTL: IdempotencyTTL}},
	}
	for _, b := range buckets {
		b.conf.Storage, b.conf.Replicas = jetstream.FileStorage, cfg.Replicas
		kv, err := js.CreateOrUpdateKeyValue(ctx, b.conf)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b.conf.Bucket, err)
		}
		*b.kv = kv
	}
	var err error
	t.Webhooks, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        job.WebhookStream,
		Description: "SigFollow webhook deliveries",
		Subjects:    []string{job.WebhookSubjectPrefix + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      webhookMaxAge,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", job.WebhookStream, err)
	}
	t.WebhooksDead, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        job.WebhookDeadStream,
		Description: "SigFollow webhook deliveries that failed every try",
		Subjects:    []string{job.WebhookDeadSubjectPrefix + ".*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.StatusTTL,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", job.WebhookDeadStream, err)
	}
	return nil
}

// WebhookConsumerConfig sizes the dispatchers' consumer.
type WebhookConsumerConfig struct {
	// AckWait must exceed one delivery's timeout.
	AckWait time.Duration
}

// DeclareWebhookConsumer creates or updates WebhookConsumer on the webhook
// stream. Deliveries are not limited in count by JetStream: the dispatcher
// follows its retry schedule and dead-letters the last failure itself.
func DeclareWebhookConsumer(ctx context.Context, webhooks jetstream.Stream, cfg WebhookConsumerConfig) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := webhooks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       WebhookConsumer,
		Description:   "SigFollow webhook dispatchers",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		// Deliveries waiting for a later try stay pending; leave them room.
		MaxAckPending: 100_000,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", WebhookConsumer, err)
	}
	return c, nil
}
