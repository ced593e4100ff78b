package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/webhook"
)

// DefaultSchedule is the delay before each try: the first at once, then
// after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DevKeyID is the id of the development key (SIGFOLLOW_DEV_API_KEY).
const DevKeyID = "dev"

// Config tunes a Dispatcher.
type Config struct {
	// Schedule is the delay before each try; its length is the number of
	// tries. Schedule[0] is normally 0.
	Schedule []time.Duration
	// MaxRetryAfter caps how long a receiver's Retry-After may postpone the
	// next try.
	MaxRetryAfter time.Duration
	// Concurrency is how many deliveries this process sends at once.
	Concurrency int
	// DevSecret signs the development key's webhooks; empty leaves them
	// unsigned and dead-lettered.
	DevSecret string
}

func (c Config) validate() error {
	switch {
	case len(c.Schedule) == 0:
		return errors.New("the retry schedule needs at least one try")
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d must be at least 1", c.Concurrency)
	case c.MaxRetryAfter < 0:
		return errors.New("max retry-after must not be negative")
	}
	for _, d := range c.Schedule {
		if d < 0 {
			return errors.New("the retry schedule's delays must not be negative")
		}
	}
	return nil
}

// Keys finds an API key's record, for its webhook secret.
type Keys interface {
	Get(ctx context.Context, id string) (*apikey.Key, error)
}

// Deps are the services a Dispatcher works with.
type Deps struct {
	// Client sends the webhooks.
	Client *webhook.Client
	// Keys holds the webhook secrets.
	Keys Keys
	// Statuses shows the delivery state in the job's status.
	Statuses *job.Statuses
	// JS publishes dead-lettered deliveries.
	JS jetstream.JetStream
	// Log receives one line per try.
	Log *slog.Logger
}

// Dispatcher sends webhook deliveries.
type Dispatcher struct {
	cfg Config
	Deps
	now func() time.Time
}

// New returns a Dispatcher.
func New(cfg Config, d Deps) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if d.Client == nil || d.Keys == nil || d.Statuses == nil || d.JS == nil || d.Log == nil {
		return nil, errors.New("webhook: every dependency is required")
	}
	return &Dispatcher{cfg: cfg, Deps: d, now: time.Now}, nil
}

// Tries is the number of tries a delivery gets.
func (d *Dispatcher) Tries() int { return len(d.cfg.Schedule) }

// Run sends deliveries from cons, at most Concurrency at a time, until ctx
// is done; it then sends the deliveries already pulled, waits for the tries
// in flight (each bounded by the client's timeout) and returns.
func (d *Dispatcher) Run(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(d.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("webhook: pull deliveries: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	slots := make(chan struct{}, d.cfg.Concurrency)
	var inflight sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			break // drained (or stopped)
		}
		slots <- struct{}{}
		inflight.Go(func() {
			defer func() { <-slots }()
			d.handle(context.WithoutCancel(ctx), msg)
		})
	}
	inflight.Wait()
	return nil
}

// handle makes one try of one delivery.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		d.Log.Error("message is not a JetStream delivery; ignored", "err", err)
		return
	}
	var del job.Delivery
	if err := json.Unmarshal(msg.Data(), &del); err != nil || del.ID == "" || del.URL == "" {
		d.Log.Error("malformed webhook delivery; terminated", "stream_seq", md.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("malformed webhook delivery")
		return
	}
	try := int(md.NumDelivered)
	log := d.Log.With("job_id", del.JobID, "webhook_id", del.ID, "try", try)

	out := d.send(ctx, del)
	now := d.now().UTC()
	last := try >= len(d.cfg.Schedule) || errors.Is(out.Err, errNoSecret)
	var next time.Duration
	if !out.Delivered() && !last {
		next = d.cfg.Schedule[try]
		if out.RetryAfter > next {
			next = min(out.RetryAfter, max(d.cfg.MaxRetryAfter, next))
		}
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Statuses.Update(sctx, del.JobID, func(st *job.StatusRecord) bool {
		w := st.Webhook
		if w == nil {
			w = &job.WebhookState{URL: del.URL}
			st.Webhook = w
		}
		if w.State == job.WebhookDelivered || w.State == job.WebhookFailed {
			return false
		}
		w.ID, w.Attempts, w.LastAttemptAt, w.LastStatus, w.LastError = del.ID, try, &now, out.Status, ""
		w.NextAttemptAt = nil
		switch {
		case out.Delivered():
			w.State, w.DeliveredAt = job.WebhookDelivered, &now
		case last:
			w.State, w.LastError = job.WebhookFailed, out.Err.Error()
		default:
			t := now.Add(next)
			w.State, w.LastError, w.NextAttemptAt = job.WebhookPending, out.Err.Error(), &t
		}
		return true
	}); err != nil {
		log.Warn("recording the webhook state failed", "err", err)
	}

	switch {
	case out.Delivered():
		log.Info("webhook delivered", "status", out.Status)
		if err := msg.DoubleAck(sctx); err != nil {
			log.Warn("ack failed; the webhook may be sent again under the same id", "err", err)
		}
	case last:
		log.Warn("webhook failed on its last try; dead-lettered", "status", out.Status, "err", out.Err)
		if err := d.deadLetter(sctx, msg, del, out); err != nil {
			log.Error("dead-lettering the webhook failed; it will be tried again", "err", err)
			_ = msg.NakWithDelay(time.Minute)
			return
		}
		if err := msg.TermWithReason("webhook failed on every try"); err != nil {
			log.Warn("terminating the delivery failed", "err", err)
		}
	default:
		log.Warn("webhook try failed; will retry", "status", out.Status, "err", out.Err, "retry_in", next)
		if err := msg.NakWithDelay(next); err != nil {
			log.Warn("handing the delivery back failed; it returns after the ack wait", "err", err)
		}
	}
}

// errNoSecret marks a delivery whose key has no webhook secret (any
// longer): no try can succeed.
var errNoSecret = errors.New("webhook: the API key has no webhook secret")

// send signs and posts one try.
func (d *Dispatcher) send(ctx context.Context, del job.Delivery) webhook.Outcome {
	secret, err := d.secret(ctx, del.KeyID)
	if err != nil {
		return webhook.Outcome{Err: err}
	}
	body, err := json.Marshal(del.Event)
	if err != nil {
		return webhook.Outcome{Err: err}
	}
	return d.Client.Send(ctx, del.URL, secret, webhook.Message{ID: del.ID, Timestamp: d.now(), Body: body})
}

func (d *Dispatcher) secret(ctx context.Context, keyID string) (string, error) {
	if keyID == DevKeyID {
		if d.cfg.DevSecret == "" {
			return "", errNoSecret
		}
		return d.cfg.DevSecret, nil
	}
	k, err := d.Keys.Get(ctx, keyID)
	if errors.Is(err, apikey.ErrNotFound) {
		return "", errNoSecret
	}
	if err != nil {
		return "", fmt.Errorf("webhook: look up the signing key: %w", err)
	}
	if k.WebhookSecret == "" {
		return "", errNoSecret
	}
	return k.WebhookSecret, nil
}

// deadLetter keeps a delivery that failed every try.
func (d *Dispatcher) deadLetter(ctx context.Context, msg jetstream.Msg, del job.Delivery, out webhook.Outcome) error {
	m := nats.NewMsg(job.WebhookDeadSubject(del.PhoneNumberID))
	m.Data = msg.Data()
	m.Header.Set("Sigfollow-Dead-Reason", out.Err.Error())
	m.Header.Set("Sigfollow-Dead-Status", fmt.Sprint(out.Status))
	_, err := d.JS.PublishMsg(ctx, m, jetstream.WithMsgID(del.ID), jetstream.WithExpectStream(job.WebhookDeadStream))
	return err
}
