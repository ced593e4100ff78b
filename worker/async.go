package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/webhook"
	whdispatch "github.com/sigfollow/media/worker/webhook"
)

// validateAsync checks the settings of asynchronous jobs and webhooks.
func (c *Config) validateAsync() []error {
	var errs []error
	if len(c.WebhookSchedule) == 0 {
		errs = append(errs, errors.New("WEBHOOK_SCHEDULE needs at least one delay"))
	}
	for _, d := range c.WebhookSchedule {
		if d < 0 {
			errs = append(errs, errors.New("WEBHOOK_SCHEDULE delays must not be negative"))
			break
		}
	}
	if c.WebhookTimeout <= 0 || c.WebhookMaxRetryAfter < 0 {
		errs = append(errs, errors.New("WEBHOOK_TIMEOUT must be positive and WEBHOOK_MAX_RETRY_AFTER not negative"))
	}
	if c.WebhookConcurrency < 1 || c.WebhookConcurrency > 1024 {
		errs = append(errs, fmt.Errorf("WEBHOOK_CONCURRENCY must be between 1 and 1024, not %d", c.WebhookConcurrency))
	}
	if _, err := webhook.ParseCIDRs(c.WebhookAllowedCIDRs); err != nil {
		errs = append(errs, fmt.Errorf("SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS: %w", err))
	}
	if c.DevWebhookSecret != "" && !apikey.ValidWebhookSecret(c.DevWebhookSecret) {
		errs = append(errs, errors.New("SIGFOLLOW_DEV_WEBHOOK_SECRET must be whsec_ and the base64 of at least 24 bytes"))
	}
	if c.JobStatusTTL <= 0 {
		errs = append(errs, errors.New("JOB_STATUS_TTL must be positive"))
	}
	if c.MediaCacheTTL <= 0 || c.MediaCacheTTL > queue.MaxCacheTTL {
		errs = append(errs, fmt.Errorf("MEDIA_CACHE_TTL must be positive and at most %v (Meta keeps media ids 30 days)", queue.MaxCacheTTL))
	}
	return errs
}

// dispatchConfig is the webhook dispatcher's share of the configuration.
func (c *Config) dispatchConfig() whdispatch.Config {
	return whdispatch.Config{
		Schedule: c.WebhookSchedule, MaxRetryAfter: c.WebhookMaxRetryAfter,
		Concurrency: c.WebhookConcurrency, DevSecret: c.DevWebhookSecret,
	}
}

// webhookClient is the SSRF-guarded client the dispatcher sends with.
func (c *Config) webhookClient() *webhook.Client {
	allowed, _ := webhook.ParseCIDRs(c.WebhookAllowedCIDRs) // checked by validate
	return webhook.NewClient(webhook.Config{AllowedCIDRs: allowed, Timeout: c.WebhookTimeout})
}

// startDispatcher starts sending webhooks from the delivery stream until
// ctx is done; stop waits for the tries in flight.
func startDispatcher(ctx context.Context, cfg Config, js jetstream.JetStream, topo *queue.Topology, log *slog.Logger) (stop func(), err error) {
	cons, err := queue.DeclareWebhookConsumer(ctx, topo.Webhooks, queue.WebhookConsumerConfig{AckWait: cfg.WebhookTimeout + 15*time.Second})
	if err != nil {
		return nil, err
	}
	d, err := whdispatch.New(cfg.dispatchConfig(), whdispatch.Deps{
		Client: cfg.webhookClient(), Keys: apikey.NewStore(topo.Keys), Statuses: job.NewStatuses(topo.Status),
		JS: js, Log: log.With("component", "webhooks"),
	})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx, cons); err != nil {
			log.Error("sending webhooks stopped", "err", err)
		}
	}()
	return func() { <-done }, nil
}
