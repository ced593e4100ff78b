package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAndTraceContext: /metrics counts requests by route pattern
// (unknown paths under one label, so scanners cannot grow the label set) and
// status, and times each stage of an upload; a client's traceparent reaches the job
// message in the same trace.
func TestMetricsAndTraceContext(t *testing.T) {
	s := newStack(t, stackOptions{})
	seen := s.respond(t, succeed)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	upload := form{fields: [][2]string{{"messaging_product", "whatsapp"}}, file: fixture(t, "accept/image.jpg"),
		partType: "image/jpeg", key: s.liveKey, header: http.Header{}}
	upload.header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r := s.post(t, upload); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Raw)
	}
	upload.key = "sflo_live_unknown"
	if r := s.post(t, upload); r.Status != 401 {
		t.Fatalf("unknown key: %d %s", r.Status, r.Raw)
	}

	jobs := seen.seen()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	tp := jobs[0].Header.Get("traceparent")
	if !strings.HasPrefix(tp, "00-"+traceID+"-") {
		t.Errorf("job's traceparent %q; want trace %s", tp, traceID)
	}

	for _, path := range []string{"/wp-login.php", "/v1/123/other", "/.env"} {
		if resp, err := http.Get(s.URL + path); err == nil {
			resp.Body.Close()
		}
	}

	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`sigfollow_ingest_http_requests_total{method="POST",route="/v1/:phoneNumberId/media",status="200"} 1`,
		`sigfollow_ingest_http_requests_total{method="POST",route="/v1/:phoneNumberId/media",status="401"} 1`,
		`sigfollow_ingest_stage_duration_seconds_count{stage="receive"} 1`,
		`sigfollow_ingest_stage_duration_seconds_count{stage="stage"} 1`,
		`sigfollow_ingest_stage_duration_seconds_count{stage="publish"} 1`,
		`sigfollow_ingest_stage_duration_seconds_count{stage="wait"} 1`,
		`sigfollow_ingest_upload_file_bytes_count 1`,
		`sigfollow_ingest_http_requests_total{method="GET",route="unmatched",status="404"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), s.liveKey) {
		t.Error("/metrics shows an API key")
	}
}
