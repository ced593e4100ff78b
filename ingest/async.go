package main

import (
	"errors"
	"fmt"

	"github.com/sigfollow/media/ingest/server"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/webhook"
)

// validateAsync checks the settings of asynchronous jobs.
func (c *Config) validateAsync() []error {
	var errs []error
	if _, err := webhook.ParseCIDRs(c.WebhookAllowedCIDRs); err != nil {
		errs = append(errs, fmt.Errorf("SIGFOLLOW_WEBHOOK_ALLOWED_CIDRS: %w", err))
	}
	if c.JobStatusTTL <= 0 {
		errs = append(errs, errors.New("JOB_STATUS_TTL must be positive"))
	}
	if c.MediaCacheTTL <= 0 || c.MediaCacheTTL > queue.MaxCacheTTL {
		errs = append(errs, fmt.Errorf("MEDIA_CACHE_TTL must be positive and at most %v (Meta keeps media ids 30 days)", queue.MaxCacheTTL))
	}
	return errs
}

// asyncDeps wires asynchronous jobs, job status, Idempotency-Key and the
// media-id cache.
func (c *Config) asyncDeps(topo *queue.Topology) *server.AsyncDeps {
	allowed, _ := webhook.ParseCIDRs(c.WebhookAllowedCIDRs) // checked by validate
	return &server.AsyncDeps{Status: topo.Status, Cache: topo.Cache, Idempotency: topo.Idempotency,
		Guard: webhook.NewGuard(allowed)}
}
