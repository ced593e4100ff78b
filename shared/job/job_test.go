package job_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

// TestMessages: a job survives its message; a carried file is the
// payload, as it was, and the rest of the job a header.
func TestMessages(t *testing.T) {
	file := []byte{0, 1, 2, 0xff, '\n', '"', '\r'}
	base := job.Job{ID: job.NewID(), PhoneNumberID: "1", Type: "image/png", Size: int64(len(file)),
		SHA256: strings.Repeat("ab", 32), Filename: "naïve \"cat\"\r\n.png", CreatedAt: time.Now().UTC().Round(0)}
	staged, carried := base, base
	staged.Bucket, staged.ObjectKey = "b", "staging/k"
	carried.Data = file
	for _, tc := range []struct {
		name string
		j    job.Job
	}{{"staged", staged}, {"carried", carried}} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := job.NewMsg("media.jobs.1", tc.j)
			if err != nil {
				t.Fatal(err)
			}
			if tc.j.Inline() {
				if string(msg.Data) != string(file) || msg.Header.Get(job.HeaderJob) == "" {
					t.Errorf("payload %q, header %q: want the file as the payload and the job in the header", msg.Data, msg.Header.Get(job.HeaderJob))
				}
				if int64(len(msg.Data)+len(msg.Header.Get(job.HeaderJob))) > job.InlineMessageBytes(tc.j.Size) {
					t.Errorf("message over its bound %d", job.InlineMessageBytes(tc.j.Size))
				}
				if strings.ContainsAny(msg.Header.Get(job.HeaderJob), "\r\n") {
					t.Errorf("header value has a line break: %q", msg.Header.Get(job.HeaderJob))
				}
			} else if strings.Contains(string(msg.Data), `"data"`) || msg.Header.Get(job.HeaderJob) != "" {
				t.Errorf("a staged job's message carries data: %s %v", msg.Data, msg.Header)
			}
			got, err := job.Decode(msg.Header, msg.Data)
			if err != nil || !reflect.DeepEqual(got, tc.j) {
				t.Errorf("decoded %+v (err %v), want %+v", got, err, tc.j)
			}
		})
	}
	t.Run("JSON with the file inside", func(t *testing.T) {
		b, _ := json.Marshal(carried)
		got, err := job.Decode(nats.Header{}, b)
		if err != nil || !reflect.DeepEqual(got, carried) {
			t.Errorf("decoded %+v (err %v)", got, err)
		}
	})
	t.Run("file in the header and the payload", func(t *testing.T) {
		b, _ := json.Marshal(carried)
		h := nats.Header{}
		h.Set(job.HeaderJob, string(b))
		if _, err := job.Decode(h, file); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("header not JSON", func(t *testing.T) {
		h := nats.Header{}
		h.Set(job.HeaderJob, "{nope")
		if _, err := job.Decode(h, file); err == nil {
			t.Error("accepted")
		}
	})
}
