package job

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// HeaderJob carries the job, as JSON, on a message whose payload is the
// job's own file (a job that carries its file).
const HeaderJob = "Sigfollow-Job"

// NewMsg returns j as a message on subject. A job that names a staged
// object is its JSON. A job that carries its file has the file as the
// payload and the rest of the job as JSON in the Sigfollow-Job header: the
// file is not base64-encoded, and the reader takes it as it arrived.
func NewMsg(subject string, j Job) (*nats.Msg, error) {
	msg := nats.NewMsg(subject)
	if !j.Inline() {
		data, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("job %s: encode: %w", j.ID, err)
		}
		msg.Data = data
		return msg, nil
	}
	file := j.Data
	j.Data = nil
	meta, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("job %s: encode: %w", j.ID, err)
	}
	msg.Header.Set(HeaderJob, string(meta))
	msg.Data = file
	return msg, nil
}

// Decode reads the job NewMsg wrote into a message with header h and
// payload data; a job that carries its file keeps data as its Data. A
// message of JSON alone, file included, is read too.
func Decode(h nats.Header, data []byte) (Job, error) {
	var j Job
	meta := h.Get(HeaderJob)
	if meta == "" {
		if err := json.Unmarshal(data, &j); err != nil {
			return Job{}, fmt.Errorf("decode job: %w", err)
		}
		return j, nil
	}
	if err := json.Unmarshal([]byte(meta), &j); err != nil {
		return Job{}, fmt.Errorf("decode job header: %w", err)
	}
	if j.Data != nil {
		return Job{}, errors.New("decode job: the file is both in the header and the payload")
	}
	j.Data = data
	if j.Data == nil {
		j.Data = []byte{}
	}
	return j, nil
}
