package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
)

// Names of the JetStream resources besides the job stream (see package job).
const (
	// Consumer is the durable pull consumer every worker process shares.
	Consumer = "media-uploaders"
	// ResultsBucket holds each job's terminal result, keyed by job id.
	ResultsBucket = "sigfollow_results"
	// KeysBucket holds API key records, keyed by key id.
	KeysBucket = "sigfollow_api_keys"
	// RateLimitsBucket holds each API key's rate-limit state, shared by
	// every ingest replica; entries expire after RateLimitTTL.
	RateLimitsBucket = "sigfollow_ratelimits"
	// RateLimitTTL is how long an idle key's rate-limit state is kept. It
	// must exceed the longest burst window (burst ÷ rate).
	RateLimitTTL = time.Hour
)

// Config sizes the topology.
type Config struct {
	// Replicas is the replica count of every stream and bucket: 1 on a single
	// server, 3 on a three-node cluster.
	Replicas int
	// JobMaxAge is how long an unconsumed job may wait in the stream.
	JobMaxAge time.Duration
	// ResultTTL is how long a job's result is kept.
	ResultTTL time.Duration
	// StatusTTL is how long a job's status record (and a dead-lettered
	// webhook) is kept; default 7 days.
	StatusTTL time.Duration
	// CacheTTL is how long a media id is reused for the same bytes; default
	// 29 days, under Meta's 30.
	CacheTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.JobMaxAge <= 0 {
		c.JobMaxAge = 24 * time.Hour
	}
	if c.ResultTTL <= 0 {
		c.ResultTTL = 24 * time.Hour
	}
	return c
}

// Connect opens a NATS connection that keeps reconnecting for as long as the
// process lives, logging each disconnect and reconnect. If the server is not
// reachable yet, Connect still returns a connection that will connect once it
// is; callers wait for it with Declare.
func Connect(url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "err", err)
		}),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("queue: connect to nats: %w", err)
	}
	return nc, nil
}

// Topology is the set of JetStream resources the pipeline uses.
type Topology struct {
	Jobs    jetstream.Stream
	Results jetstream.KeyValue
	Keys    jetstream.KeyValue
	// Status, Cache and Idempotency serve asynchronous jobs, the media-id
	// cache and Idempotency-Key; Webhooks and WebhooksDead hold webhook
	// deliveries and the dead-lettered ones (see async.go).
	Status       jetstream.KeyValue
	Cache        jetstream.KeyValue
	Idempotency  jetstream.KeyValue
	Webhooks     jetstream.Stream
	WebhooksDead jetstream.Stream
	// RateLimits is the per-key rate-limit state (in memory: losing it
	// only forgives a burst).
	RateLimits jetstream.KeyValue
	// DeadLetters holds failed jobs that may be replayed; Exhausted captures
	// the advisories of jobs that used up their deliveries (deadletter.go).
	DeadLetters jetstream.Stream
	Exhausted   jetstream.Stream
}

// Declare creates or updates the topology, retrying until ctx is done if the
// server is not reachable or JetStream is not ready yet.
func Declare(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Topology, error) {
	wait := 100 * time.Millisecond
	for {
		t, err := declare(ctx, js, cfg.withDefaults())
		if err == nil {
			err = declareAsync(ctx, js, cfg, t)
		}
		if err == nil {
			err = declareDeadLetters(ctx, js, cfg, t)
		}
		if err == nil {
			return t, nil
		}
		log.Warn("jetstream not ready; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("queue: declare topology: %w", errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func declare(ctx context.Context, js jetstream.JetStream, cfg Config) (*Topology, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	jobs, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        job.Stream,
		Description: "SigFollow media upload jobs",
		Subjects:    []string{job.SubjectPrefix + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.JobMaxAge,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", job.Stream, err)
	}
	results, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ResultsBucket,
		Description: "terminal result of each upload job, by job id",
		TTL:         cfg.ResultTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ResultsBucket, err)
	}
	keys, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      KeysBucket,
		Description: "API keys (hashed), by key id",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", KeysBucket, err)
	}
	limits, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      RateLimitsBucket,
		Description: "rate-limit state per API key (GCRA theoretical arrival time)",
		TTL:         RateLimitTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", RateLimitsBucket, err)
	}
	return &Topology{Jobs: jobs, Results: results, Keys: keys, RateLimits: limits}, nil
}
