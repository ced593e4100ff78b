package objstore

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config locates the object store.
type Config struct {
	// Endpoint is the store's URL, e.g. http://127.0.0.1:9000.
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
}

// maxRetries is how often the client retries a failed request.
const maxRetries = 3

// New returns a client for the store. It does not contact the store.
func New(cfg Config) (*minio.Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("objstore: endpoint %q must be an http(s) URL", cfg.Endpoint)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: cfg.Region,
		// A few quick retries ride out a blip; an outage fails in about a
		// second instead of the client's default of ten retries, so that
		// ingest answers 503 promptly and workers hand the job back.
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	return c, nil
}

// EnsureBucket creates the bucket if it does not exist and puts the
// lifecycle rule in place that expires staged uploads after
// StagingExpiryDays, retrying until ctx is done while the store is
// unreachable.
func EnsureBucket(ctx context.Context, c *minio.Client, bucket string) error {
	wait := 100 * time.Millisecond
	for {
		err := ensureBucket(ctx, c, bucket)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("objstore: bucket %s: %w (last error: %v)", bucket, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func ensureBucket(ctx context.Context, c *minio.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, bucket)
	if err != nil {
		return err
	}
	if !ok {
		err = c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		if err != nil {
			if resp := minio.ToErrorResponse(err); resp.Code != "BucketAlreadyOwnedByYou" && resp.Code != "BucketAlreadyExists" {
				return err
			}
		}
	}
	return ensureLifecycle(ctx, c, bucket)
}
