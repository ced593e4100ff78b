package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/objstore"
	"github.com/sigfollow/media/shared/queue"
)

// report is the run's reconciliation.
type report struct {
	Uploads      int            // uploads the clients sent
	Accepted     int            // answered with a job id
	Answers      map[int]int    // accepted uploads by final HTTP status
	Refused      int            // 503 answers (retried by the client)
	Unanswered   int            // uploads never accepted, after every retry
	Succeeded    int            // accepted, recorded succeeded, at Meta
	Cached       int            // of them, answered from the media-id cache
	Failed       int            // accepted, recorded failed
	FailedBy     map[string]int // failed by error code
	DeadLettered int            // entries in the dead-letter queue
	Lost         int            // accepted without a terminal result, or not at Meta
	LostJobs     []string
	Staged       int // objects left in staging
	Kept         int // of them, kept for a dead-lettered job's replay
	Leaked       int // the others
	LeakedKeys   []string
	MetaUploads  int // uploads Meta stored (retries after a lost answer included)
	Mismatched   int // succeeded jobs answered with another media id than recorded
	Settled      bool
}

// reconcile waits until every accepted job has a terminal result and the
// job stream is empty (or Settle runs out), then compares.
func (s *stack) reconcile(ctx context.Context, outcomes []outcome) (*report, error) {
	nc, err := nats.Connect(s.natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	r := &report{Uploads: len(outcomes), Answers: map[int]int{}, FailedBy: map[string]int{}}
	accepted := map[string]outcome{}
	for _, o := range outcomes {
		r.Refused += o.refused
		if o.jobID == "" {
			r.Unanswered++
			continue
		}
		accepted[o.jobID] = o
		r.Answers[o.status]++
	}
	r.Accepted = len(accepted)

	results := map[string]job.Result{}
	cached := map[string]bool{}
	statuses := job.NewStatuses(topo.Status)
	deadline := time.Now().Add(s.cfg.Settle)
	for {
		for id := range accepted {
			if _, done := results[id]; done {
				continue
			}
			if res, ok := lookup(ctx, topo.Results, id); ok {
				results[id] = res
			} else if res, ok := cacheHit(ctx, statuses, id); ok {
				// A retry of an upload whose first answer was lost: the
				// media-id cache answered it, and no job ran.
				results[id], cached[id] = res, true
			}
		}
		info, err := topo.Jobs.Info(ctx)
		if len(results) == len(accepted) && err == nil && info.State.Msgs == 0 {
			r.Settled = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}

	for id, o := range accepted {
		res, ok := results[id]
		switch {
		case !ok:
			r.Lost++
			r.LostJobs = append(r.LostJobs, id+" (no result; answered "+fmt.Sprint(o.status)+")")
		case res.Status == job.StatusSucceeded:
			if _, atMeta := s.graph.Lookup(res.MediaID); !atMeta {
				r.Lost++
				r.LostJobs = append(r.LostJobs, id+" (media id "+res.MediaID+" unknown at Meta)")
				continue
			}
			if o.mediaID != "" && o.mediaID != res.MediaID {
				// Uploaded twice: the caller's id is as good as the
				// record's, if Meta has it.
				if _, atMeta := s.graph.Lookup(o.mediaID); !atMeta {
					r.Lost++
					r.LostJobs = append(r.LostJobs, id+" (answered "+o.mediaID+", which Meta lacks)")
					continue
				}
				r.Mismatched++
			}
			r.Succeeded++
			if cached[id] {
				r.Cached++
			}
		default:
			r.Failed++
			code := "unknown"
			if res.Error != nil {
				code = res.Error.Code
			}
			r.FailedBy[code]++
		}
	}

	dl, err := queue.NewDeadLetters(js, topo).List(ctx)
	if err != nil {
		return nil, err
	}
	r.DeadLettered = len(dl)
	kept := map[string]bool{}
	for _, d := range dl {
		if !d.Job.Inline() {
			kept[d.Job.ObjectKey] = true
		}
	}
	store, err := objstore.New(objstore.Config{Endpoint: s.minio.Endpoint, AccessKey: s.minio.AccessKey,
		SecretKey: s.minio.SecretKey, Region: "us-east-1", Bucket: runBucket})
	if err != nil {
		return nil, err
	}
	// Removals retried after an outage may still be under way.
	for {
		r.Staged, r.Kept, r.LeakedKeys, err = leftovers(ctx, store, kept)
		if err != nil {
			return nil, err
		}
		r.Leaked = len(r.LeakedKeys)
		if r.Leaked == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	r.MetaUploads = s.graph.Stats().Uploads
	sort.Strings(r.LostJobs)
	return r, nil
}

// leftovers lists the staged objects: how many, how many a dead-lettered
// job keeps, and the others' keys.
func leftovers(ctx context.Context, store *minio.Client, kept map[string]bool) (staged, keptN int, leaked []string, err error) {
	for o := range store.ListObjects(ctx, runBucket, minio.ListObjectsOptions{Prefix: objstore.StagingPrefix, Recursive: true}) {
		if o.Err != nil {
			return 0, 0, nil, fmt.Errorf("list staged objects: %w", o.Err)
		}
		staged++
		if kept[o.Key] {
			keptN++
			continue
		}
		leaked = append(leaked, o.Key)
	}
	return staged, keptN, leaked, nil
}

func lookup(ctx context.Context, kv jetstream.KeyValue, id string) (job.Result, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, id)
	if err != nil {
		return job.Result{}, false // not yet, or NATS is still coming back
	}
	var res job.Result
	if json.Unmarshal(e.Value(), &res) != nil || !res.Status.Terminal() {
		return job.Result{}, false
	}
	return res, true
}

// cacheHit returns the result of job id if the media-id cache answered it:
// such a job has a succeeded status record and no result of its own.
func cacheHit(ctx context.Context, statuses *job.Statuses, id string) (job.Result, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := statuses.Get(ctx, id)
	if err != nil || !st.Cached || st.Status != job.StatusSucceeded {
		return job.Result{}, false
	}
	return job.Result{JobID: id, Status: job.StatusSucceeded, MediaID: st.MediaID}, true
}

func (r *report) print(w io.Writer, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k string, v any, note string) { fmt.Fprintf(tw, "%s\t%v\t%s\n", k, v, note) }
	fmt.Fprintf(tw, "fault run: %d uploads in %v\n", r.Uploads, took.Round(time.Second))
	line("accepted", r.Accepted, "answers with a job id, by status: "+counts(r.Answers))
	line("refused", r.Refused, "503 answers during outages (nothing queued; the client retried)")
	line("never accepted", r.Unanswered, "uploads still refused after every retry")
	line("succeeded", r.Succeeded, fmt.Sprintf("recorded with a media id Meta has (%d answered from the media-id cache)", r.Cached))
	line("failed", r.Failed, "recorded as failed: "+counts(r.FailedBy))
	line("dead-lettered", r.DeadLettered, "failed jobs kept for replay (worker dlq list)")
	line("lost", r.Lost, "accepted, with no terminal result or a media id Meta lacks")
	line("leaked", r.Leaked, fmt.Sprintf("staged objects left that no dead-lettered job keeps (%d staged, %d kept)", r.Staged, r.Kept))
	line("Meta uploads", r.MetaUploads, fmt.Sprintf("uploads Meta stored, repeats after a crash included (%d answered with another valid id than recorded)", r.Mismatched))
	_ = tw.Flush()
	if !r.Settled {
		fmt.Fprintln(w, "warning: the pipeline did not settle within -settle")
	}
	for _, id := range r.LostJobs {
		fmt.Fprintln(w, "lost:", id)
	}
	for _, k := range r.LeakedKeys {
		fmt.Fprintln(w, "leaked:", k)
	}
}

func counts[K comparable](m map[K]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v=%d", k, v))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
