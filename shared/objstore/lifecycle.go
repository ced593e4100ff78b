package objstore

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
)

// Staging lifecycle. Every staged file lives under StagingPrefix and is
// removed by whoever brings its job to a terminal state; the rule catches
// what a crash or an outage left behind.
const (
	// StagingPrefix is the key prefix of every staged upload.
	StagingPrefix = "staging/"
	// StagingRuleID names the bucket lifecycle rule that expires staged
	// uploads.
	StagingRuleID = "sigfollow-expire-staging"
	// StagingExpiryDays is how long a staged upload may stay before the store
	// deletes it.
	StagingExpiryDays = 1
)

// stagingRule expires staged uploads after StagingExpiryDays, and
// incomplete multipart uploads under the prefix after the same time.
func stagingRule() lifecycle.Rule {
	return lifecycle.Rule{
		ID:         StagingRuleID,
		Status:     "Enabled",
		RuleFilter: lifecycle.Filter{Prefix: StagingPrefix},
		Expiration: lifecycle.Expiration{Days: StagingExpiryDays},
		AbortIncompleteMultipartUpload: lifecycle.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: StagingExpiryDays,
		},
	}
}

// ensureLifecycle puts the staging rule in place, keeping any other rules
// the bucket carries. It writes only when the rule is missing or differs.
func ensureLifecycle(ctx context.Context, c *minio.Client, bucket string) error {
	cfg, err := c.GetBucketLifecycle(ctx, bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code != "NoSuchLifecycleConfiguration" {
			return fmt.Errorf("read lifecycle: %w", err)
		}
		cfg = lifecycle.NewConfiguration()
	}
	want := stagingRule()
	rules := make([]lifecycle.Rule, 0, len(cfg.Rules)+1)
	for _, r := range cfg.Rules {
		if r.ID != want.ID {
			rules = append(rules, r)
			continue
		}
		if isStagingRule(r) {
			return nil
		}
	}
	cfg.Rules = append(rules, want)
	if err := c.SetBucketLifecycle(ctx, bucket, cfg); err != nil {
		return fmt.Errorf("set lifecycle: %w", err)
	}
	return nil
}

// isStagingRule reports whether r does what stagingRule asks for.
func isStagingRule(r lifecycle.Rule) bool {
	prefix := r.RuleFilter.Prefix
	if prefix == "" {
		prefix = r.Prefix
	}
	return r.Status == "Enabled" && prefix == StagingPrefix && int(r.Expiration.Days) == StagingExpiryDays
}

// StagingExpiry returns the days after which the bucket expires staged
// uploads, or 0 if no rule covering StagingPrefix is in place.
func StagingExpiry(ctx context.Context, c *minio.Client, bucket string) (int, error) {
	cfg, err := c.GetBucketLifecycle(ctx, bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchLifecycleConfiguration" {
			return 0, nil
		}
		return 0, fmt.Errorf("objstore: read lifecycle of %s: %w", bucket, err)
	}
	for _, r := range cfg.Rules {
		prefix := r.RuleFilter.Prefix
		if prefix == "" {
			prefix = r.Prefix
		}
		if r.Status == "Enabled" && prefix == StagingPrefix && r.Expiration.Days > 0 {
			return int(r.Expiration.Days), nil
		}
	}
	return 0, nil
}
