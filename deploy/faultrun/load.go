package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigfollow/media/shared/job"
)

// phones are the phone number ids the load spreads over.
var phones = [...]string{"15550000001", "15550000002", "15550000003"}

// outcome is what a client was finally told about one upload.
type outcome struct {
	status  int
	jobID   string // set if the answer named a job: it was accepted
	mediaID string
	code    string // the error code, if any
	refused int    // answers without a job (503) before this one
	err     error  // the last transport error, if it never got an answer
}

// Client behaviour under faults.
const (
	// retries is how often a client retries an upload that was refused
	// with 503 or not answered; a real client honours Retry-After, this one
	// waits retryPause to keep the run short.
	retries    = 40
	retryPause = 250 * time.Millisecond
)

// load uploads n distinct files from clients at once, paced to take about
// span, and returns each upload's outcome.
func (s *stack) load(ctx context.Context, n, clients int, span time.Duration) []outcome {
	out := make([]outcome, n)
	var next atomic.Int64
	pace := span * time.Duration(clients) / time.Duration(n)
	client := &http.Client{Timeout: s.cfg.SyncTimeout + 30*time.Second}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				started := time.Now()
				out[i] = s.upload(ctx, client, i)
				select {
				case <-ctx.Done():
				case <-time.After(pace - time.Since(started)):
				}
			}
		})
	}
	wg.Wait()
	return out
}

// stagedSize is the size of every fourth upload: over ingest's default
// INLINE_MAX_BYTES.
const stagedSize = job.DefaultInlineMaxBytes + 64<<10

// upload sends file i until it is answered with anything but 503.
func (s *stack) upload(ctx context.Context, client *http.Client, i int) outcome {
	var o outcome
	data := fmt.Appendf(nil, "fault run upload %d at %s\n", i, time.Now().Format(time.RFC3339Nano))
	if i%4 == 3 {
		// Over INLINE_MAX_BYTES: staged in MinIO, so that the MinIO outage
		// and the staged files' bookkeeping are exercised too; the other
		// files travel in their jobs.
		data = bytes.Repeat(data, stagedSize/len(data)+1)
	}
	phone := phones[i%len(phones)]
	for range retries {
		status, hdr, body, err := post(ctx, client, s.ingestURL, phone, data)
		o.err = err
		if err == nil && status != http.StatusServiceUnavailable {
			o.status = status
			o.jobID = hdr.Get("Sigfollow-Job-Id")
			if id, ok := body["id"].(string); ok && status == http.StatusOK {
				o.mediaID = id
			}
			if e, ok := body["error"].(map[string]any); ok {
				o.code, _ = e["code"].(string)
				if id, ok := e["job_id"].(string); ok && o.jobID == "" {
					o.jobID = id
				}
			}
			return o
		}
		if err == nil {
			o.refused++
		}
		select {
		case <-ctx.Done():
			return o
		case <-time.After(retryPause):
		}
	}
	return o
}

func post(ctx context.Context, client *http.Client, base, phone string, data []byte) (int, http.Header, map[string]any, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("messaging_product", "whatsapp")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="fault.txt"`)
	h.Set("Content-Type", "text/plain")
	part, _ := w.CreatePart(h)
	_, _ = part.Write(data)
	_ = w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/"+phone+"/media", &buf)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+runDevKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, resp.Header, body, nil
}
