package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

// TestDLQCLI lists, replays and drops dead-lettered jobs with `worker dlq`,
// and refuses to replay a job whose staged file is gone.
func TestDLQCLI(t *testing.T) {
	mio := testenv.MinIO(t)
	store := mio.Client(t, bucket)
	natsURL := testenv.NATS(t)
	_, js := testenv.JetStream(t, natsURL)
	ctx := t.Context()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": natsURL, "S3_ENDPOINT": mio.Endpoint, "S3_ACCESS_KEY": mio.AccessKey,
		"S3_SECRET_KEY": mio.SecretKey, "S3_BUCKET": bucket}
	cli := func(args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"worker", "dlq"}, args...), mapEnv(env), &out, io.Discard)
		return out.String(), err
	}

	data := []byte("dead-lettered upload\n")
	mk := func(staged bool) job.Job {
		j := job.Job{ID: job.NewID(), PhoneNumberID: testPhone, Bucket: bucket, Type: "text/plain",
			Size: int64(len(data)), SHA256: hexSum(data), CreatedAt: time.Now().UTC()}
		j.ObjectKey = "staging/dlq/" + j.ID
		if staged {
			if _, err := store.PutObject(ctx, bucket, j.ObjectKey, bytes.NewReader(data), j.Size, minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return j
	}
	present, gone := mk(true), mk(false)
	carried := job.Job{ID: job.NewID(), PhoneNumberID: testPhone, Type: "text/plain", Data: data,
		Size: int64(len(data)), SHA256: hexSum(data), CreatedAt: time.Now().UTC()}
	dlq := queue.NewDeadLetters(js, topo)
	for i, j := range []job.Job{present, gone, carried} {
		if err := dlq.Add(ctx, j, uint64(i+1), 8, job.CodeMetaUnavailable, "Meta is unavailable; gave up after 8 attempts"); err != nil {
			t.Fatal(err)
		}
	}

	out, err := cli("list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{present.ID + "  " + testPhone, gone.ID, carried.ID, "present", "gone", "in the job", job.CodeMetaUnavailable} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}

	out, err = cli("replay", gone.ID)
	if err == nil || !strings.Contains(out, "cannot replay "+gone.ID) {
		t.Errorf("replaying a job without its staged file: %v\n%s", err, out)
	}
	out, err = cli("replay", present.ID)
	if err != nil || !strings.Contains(out, "replayed "+present.ID) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if _, err := topo.Jobs.GetLastMsgForSubject(ctx, job.Subject(testPhone)); err != nil {
		t.Errorf("replayed job not queued: %v", err)
	}
	// A job that carries its file needs nothing from the store, and its
	// replay carries the file again.
	out, err = cli("replay", carried.ID)
	if err != nil || !strings.Contains(out, "replayed "+carried.ID) {
		t.Fatalf("replaying a job that carries its file: %v\n%s", err, out)
	}
	last, err := topo.Jobs.GetLastMsgForSubject(ctx, job.Subject(testPhone))
	var requeued job.Job
	if err == nil {
		requeued, err = job.Decode(last.Header, last.Data)
	}
	if err != nil || requeued.ID != carried.ID || !bytes.Equal(requeued.Data, data) {
		t.Errorf("replayed job %s carries %q (err %v), want %s with the file", requeued.ID, requeued.Data, err, carried.ID)
	}

	if out, err := cli("drop", gone.ID); err != nil || !strings.Contains(out, "dropped "+gone.ID) {
		t.Fatalf("drop: %v\n%s", err, out)
	}
	if out, _ := cli("list"); !strings.Contains(out, "no dead-lettered jobs") {
		t.Errorf("after replay and drop, list shows:\n%s", out)
	}
}
