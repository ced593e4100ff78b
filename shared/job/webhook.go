package job

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Webhook delivery stream and subjects.
const (
	// WebhookStream holds webhook deliveries waiting to be sent (work-queue
	// retention, file storage), so they survive restarts.
	WebhookStream = "MEDIA_WEBHOOKS"
	// WebhookSubjectPrefix prefixes delivery subjects; the phone number id
	// follows.
	WebhookSubjectPrefix = "media.webhooks"
	// WebhookDeadStream keeps deliveries whose every try failed.
	WebhookDeadStream = "MEDIA_WEBHOOKS_DEAD"
	// WebhookDeadSubjectPrefix prefixes dead-letter subjects; the phone
	// number id follows.
	WebhookDeadSubjectPrefix = "media.webhooks-dead"
)

// Webhook event types.
const (
	EventSucceeded = "media.upload.succeeded"
	EventFailed    = "media.upload.failed"
)

// WebhookSubject is the subject a delivery for phoneNumberID is published on.
func WebhookSubject(phoneNumberID string) string { return WebhookSubjectPrefix + "." + phoneNumberID }

// WebhookDeadSubject is the dead-letter subject for phoneNumberID.
func WebhookDeadSubject(phoneNumberID string) string {
	return WebhookDeadSubjectPrefix + "." + phoneNumberID
}

// WebhookID is the webhook-id of a job's event: the same on every try, so
// receivers can drop duplicates.
func WebhookID(jobID string) string { return "msg_" + jobID }

// Delivery is one webhook to send: the event for a job's terminal result.
type Delivery struct {
	// ID is the webhook-id, the same on every try.
	ID            string `json:"id"`
	JobID         string `json:"job_id"`
	PhoneNumberID string `json:"phone_number_id"`
	// KeyID names the API key whose webhook secret signs the event.
	KeyID string `json:"key_id"`
	URL   string `json:"url"`
	// Event is the payload, signed and sent as is on every try.
	Event Event `json:"event"`
}

// Event is a webhook's JSON body.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is an event's job outcome.
type EventData struct {
	JobID         string `json:"job_id"`
	PhoneNumberID string `json:"phone_number_id"`
	MediaID       string `json:"id,omitempty"`
	Error         *Error `json:"error,omitempty"`
}

// NewDelivery returns the delivery of r's event for j.
func NewDelivery(j Job, r Result, now time.Time) Delivery {
	ev := Event{Type: EventSucceeded, Timestamp: now.UTC(),
		Data: EventData{JobID: j.ID, PhoneNumberID: j.PhoneNumberID, MediaID: r.MediaID}}
	if r.Status != StatusSucceeded {
		ev.Type, ev.Data.MediaID, ev.Data.Error = EventFailed, "", r.Error
	}
	return Delivery{ID: WebhookID(j.ID), JobID: j.ID, PhoneNumberID: j.PhoneNumberID, KeyID: j.KeyID, URL: j.CallbackURL, Event: ev}
}

// PublishDelivery queues a delivery on the webhook stream. The webhook-id is
// the message id, so the same delivery published twice within the stream's
// duplicate window is queued once.
func PublishDelivery(ctx context.Context, js jetstream.JetStream, d Delivery) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	m := nats.NewMsg(WebhookSubject(d.PhoneNumberID))
	m.Data = data
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(d.ID), jetstream.WithExpectStream(WebhookStream)); err != nil {
		return fmt.Errorf("job: queue webhook %s: %w", d.ID, err)
	}
	return nil
}
