package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/queue"
)

const dlqUsage = `usage:
  worker dlq list
        list dead-lettered jobs: job id, phone number id, reason, deliveries,
        when, and whether the staged file is still there to replay
  worker dlq replay JOB_ID... | --all
        queue the jobs again under their own job ids (their staged files must
        still be in the bucket; the lifecycle rule expires them after a day)
  worker dlq drop JOB_ID...
        remove jobs from the dead-letter queue without replaying them
`

// runDLQ lists, replays and drops dead-lettered jobs. It reads NATS_URL and
// the S3_* variables like the worker.
func runDLQ(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := io.WriteString(stdout, dlqUsage)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nc, err := queue.Connect(cfg.NATSURL, "worker-dlq", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo, err := queue.Declare(ctx, js, queue.Config{Replicas: cfg.NATSReplicas}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("dlq: reach NATS at %s: %w", cfg.logged().NATSURL, err)
	}
	store, err := objstore.New(objstore.Config{
		Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		Region: cfg.S3Region, Bucket: cfg.S3Bucket,
	})
	if err != nil {
		return err
	}
	dlq := queue.NewDeadLetters(js, topo)

	switch args[0] {
	case "list":
		return listDLQ(ctx, dlq, store, stdout)
	case "replay":
		if len(args) < 2 {
			return errors.New("dlq replay takes job ids or --all\n" + dlqUsage)
		}
		return replayDLQ(ctx, dlq, store, args[1:], stdout)
	case "drop":
		if len(args) < 2 {
			return errors.New("dlq drop takes job ids\n" + dlqUsage)
		}
		for _, id := range args[1:] {
			dl, err := dlq.Find(ctx, id)
			if err != nil {
				return err
			}
			if err := dlq.Delete(ctx, dl.Seq); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dropped %s\n", id)
		}
		return nil
	}
	return fmt.Errorf("dlq: unknown command %q\n%s", args[0], dlqUsage)
}

func listDLQ(ctx context.Context, dlq *queue.DeadLetters, store *minio.Client, stdout io.Writer) error {
	all, err := dlq.List(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		_, err := io.WriteString(stdout, "no dead-lettered jobs\n")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tPHONE NUMBER ID\tREASON\tDELIVERIES\tDEAD-LETTERED\tSTAGED FILE\tMESSAGE")
	for _, dl := range all {
		staged, err := stagedState(ctx, store, dl)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", dl.Job.ID, dl.Job.PhoneNumberID, dl.Reason, dl.Deliveries,
			dl.At.UTC().Format(time.RFC3339), staged, dl.Message)
	}
	return tw.Flush()
}

// stagedState says whether a dead-lettered job's staged file is still there.
func stagedState(ctx context.Context, store *minio.Client, dl queue.DeadLetter) (string, error) {
	if dl.Job.Inline() {
		return "in the job", nil
	}
	_, err := store.StatObject(ctx, dl.Job.Bucket, dl.Job.ObjectKey, minio.StatObjectOptions{})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		return "present", nil
	case code == "NoSuchKey" || code == "NoSuchBucket":
		return "gone", nil
	}
	return "", fmt.Errorf("dlq: object store: %w", err)
}

func replayDLQ(ctx context.Context, dlq *queue.DeadLetters, store *minio.Client, ids []string, stdout io.Writer) error {
	var todo []queue.DeadLetter
	if len(ids) == 1 && ids[0] == "--all" {
		all, err := dlq.List(ctx)
		if err != nil {
			return err
		}
		todo = all
	} else {
		for _, id := range ids {
			dl, err := dlq.Find(ctx, id)
			if err != nil {
				return err
			}
			todo = append(todo, dl)
		}
	}
	var cannot []string
	replayed := 0
	for _, dl := range todo {
		staged, err := stagedState(ctx, store, dl)
		if err != nil {
			return err
		}
		if staged == "gone" {
			fmt.Fprintf(stdout, "cannot replay %s: its staged file %s is gone (deleted or expired by the bucket's lifecycle rule); the client must upload again. `worker dlq drop %s` removes the entry\n",
				dl.Job.ID, dl.Job.ObjectKey, dl.Job.ID)
			cannot = append(cannot, dl.Job.ID)
			continue
		}
		if err := dlq.Replay(ctx, dl); err != nil {
			return err
		}
		replayed++
		fmt.Fprintf(stdout, "replayed %s\n", dl.Job.ID)
	}
	fmt.Fprintf(stdout, "%d replayed, %d could not be\n", replayed, len(cannot))
	if len(cannot) > 0 {
		return fmt.Errorf("dlq: %d jobs could not be replayed: staged files gone", len(cannot))
	}
	return nil
}
