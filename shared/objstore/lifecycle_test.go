package objstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/testenv"
)

// TestEnsureBucketExpiresStagedUploads checks on a real MinIO server that
// the staging bucket carries the rule expiring staged uploads after a day,
// keeps rules of its own, and repairs a rule someone changed.
func TestEnsureBucketExpiresStagedUploads(t *testing.T) {
	m := testenv.MinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cases := []struct {
		name     string
		existing []lifecycle.Rule // rules on the bucket before EnsureBucket
		keep     string           // a foreign rule id that must survive
	}{
		{name: "new bucket"},
		{name: "foreign rule kept", existing: []lifecycle.Rule{{
			ID: "operator-archive", Status: "Enabled", RuleFilter: lifecycle.Filter{Prefix: "archive/"},
			Expiration: lifecycle.Expiration{Days: 30},
		}}, keep: "operator-archive"},
		{name: "changed rule repaired", existing: []lifecycle.Rule{{
			ID: objstore.StagingRuleID, Status: "Enabled", RuleFilter: lifecycle.Filter{Prefix: objstore.StagingPrefix},
			Expiration: lifecycle.Expiration{Days: 90},
		}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := fmt.Sprintf("lifecycle-%d", i)
			c, err := objstore.New(m.Config(bucket))
			if err != nil {
				t.Fatal(err)
			}
			if tc.existing != nil {
				if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := c.SetBucketLifecycle(ctx, bucket, &lifecycle.Configuration{Rules: tc.existing}); err != nil {
					t.Fatal(err)
				}
			}
			// Twice: the second call must find everything in place.
			for range 2 {
				if err := objstore.EnsureBucket(ctx, c, bucket); err != nil {
					t.Fatal(err)
				}
			}
			days, err := objstore.StagingExpiry(ctx, c, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if days != 1 {
				t.Errorf("staged uploads expire after %d days, want 1", days)
			}
			cfg, err := c.GetBucketLifecycle(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]int{}
			for _, r := range cfg.Rules {
				ids[r.ID]++
			}
			if ids[objstore.StagingRuleID] != 1 {
				t.Errorf("rules %v: want exactly one %s", ids, objstore.StagingRuleID)
			}
			if tc.keep != "" && ids[tc.keep] != 1 {
				t.Errorf("rules %v: the bucket's own rule %s was dropped", ids, tc.keep)
			}
		})
	}
}
