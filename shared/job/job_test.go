package job_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/job"
)

func TestValidate(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	staged := func() job.Job {
		return job.Job{ID: job.NewID(), PhoneNumberID: "15550001111", Bucket: "b", ObjectKey: "staging/x",
			Type: "text/plain", Size: 5, SHA256: sha, CreatedAt: time.Now()}
	}
	carried := func() job.Job {
		j := staged()
		j.Bucket, j.ObjectKey, j.Data = "", "", []byte("hello")
		return j
	}
	tests := []struct {
		name   string
		change func(*job.Job)
		from   func() job.Job
		want   string // "" for valid
	}{
		{name: "staged", from: staged},
		{name: "carried", from: carried},
		{name: "no id", from: staged, change: func(j *job.Job) { j.ID = "" }, want: "missing id"},
		{name: "phone not digits", from: staged, change: func(j *job.Job) { j.PhoneNumberID = "12a" }, want: "not digits"},
		{name: "staged without key", from: staged, change: func(j *job.Job) { j.ObjectKey = "" }, want: "missing staged object"},
		{name: "carried with a key too", from: carried, change: func(j *job.Job) { j.ObjectKey = "staging/x" }, want: "and names a staged object"},
		{name: "carried bytes short of size", from: carried, change: func(j *job.Job) { j.Size = 6 }, want: "carries 5 bytes, size says 6"},
		{name: "no type", from: staged, change: func(j *job.Job) { j.Type = "" }, want: "missing type"},
		{name: "bad sha", from: staged, change: func(j *job.Job) { j.SHA256 = "abc" }, want: "not 64 hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := tt.from()
			if tt.change != nil {
				tt.change(&j)
			}
			err := j.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("valid job refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestCarriedFileRoundTrips: a job's file survives the JSON of its message,
// and a staged job's message has no data field at all.
func TestCarriedFileRoundTrips(t *testing.T) {
	data := []byte{0, 1, 2, 0xff, '\n', '"'}
	in := job.Job{ID: job.NewID(), PhoneNumberID: "1", Type: "image/png", Size: int64(len(data)), Data: data}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out job.Job
	if err := json.Unmarshal(b, &out); err != nil || !out.Inline() || string(out.Data) != string(data) {
		t.Fatalf("decoded %+v (err %v) from %s", out, err, b)
	}
	if int64(len(b)) > job.InlineMessageBytes(int64(len(data))) {
		t.Errorf("message of %d bytes over its bound %d", len(b), job.InlineMessageBytes(int64(len(data))))
	}
	b, _ = json.Marshal(job.Job{ID: "x", Bucket: "b", ObjectKey: "k"})
	if strings.Contains(string(b), `"data"`) {
		t.Errorf("a staged job's message has a data field: %s", b)
	}
}
