package process

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigfollow/media/worker/graph"
)

// Stages of a job timed by sigfollow_worker_stage_duration_seconds.
const (
	stageQueued = "queued"      // from JetStream storing the delivery to this worker taking it
	stageLookup = "lookup"      // looking up an earlier delivery's result
	stageFetch  = "fetch"       // opening the staged object (time to its first byte)
	stageUpload = "meta_upload" // streaming it to Meta until Meta answers
	stageSettle = "settle"      // recording the result, status and cache until the caller is answered
	stageTotal  = "total"       // from delivery to the job settled
)

// Metrics are the worker's Prometheus metrics. The exported fields are for
// the parts of the worker that count their own outcomes.
type Metrics struct {
	stages     *prometheus.HistogramVec
	jobs       *prometheus.CounterVec
	metaErrors *prometheus.CounterVec

	// WebhookDeliveries counts webhook tries by outcome ("delivered",
	// "retry", "dead_lettered", "refused").
	WebhookDeliveries *prometheus.CounterVec
	// CacheLookups counts media-id cache lookups by result ("hit" or
	// "miss").
	CacheLookups *prometheus.CounterVec
}

// NewMetrics registers the worker's metrics in reg, a registry of this
// process's own.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sigfollow_worker_stage_duration_seconds",
			Help:    "Time spent in each step of a job: queued (in the stream, by JetStream's clock), lookup (earlier result), fetch (staged object), meta_upload, settle, total.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"stage"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_worker_jobs_total",
			Help: "Job deliveries handled, by outcome: succeeded, failed, retried, handed_back, answered_from_record.",
		}, []string{"outcome"}),
		metaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_worker_meta_errors_total",
			Help: "Failed uploads to Meta, by Meta's error code (\"none\" without one, e.g. a network error) and kind.",
		}, []string{"code", "kind"}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_worker_webhook_deliveries_total",
			Help: "Webhook delivery tries, by outcome.",
		}, []string{"outcome"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_worker_cache_lookups_total",
			Help: "Media-id cache lookups, by result (hit or miss).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.stages, m.jobs, m.metaErrors, m.WebhookDeliveries, m.CacheLookups)
	return m
}

// since records the time since start for stage.
func (m *Metrics) since(stage string, start time.Time) {
	m.stages.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}

// outcome counts one delivery's outcome.
func (m *Metrics) outcome(o string) { m.jobs.WithLabelValues(o).Inc() }

// metaError counts a failed upload to Meta.
func (m *Metrics) metaError(err error) {
	code, kind := "none", "other"
	var ge *graph.Error
	if errors.As(err, &ge) {
		kind = ge.Kind.String()
		if ge.Code != 0 {
			code = strconv.Itoa(ge.Code)
		} else if ge.HTTPStatus != 0 {
			code = "http_" + strconv.Itoa(ge.HTTPStatus)
		}
	}
	m.metaErrors.WithLabelValues(code, kind).Inc()
}

// queueCollector reports the shared consumer's backlog on each scrape.
type queueCollector struct {
	cons        jetstream.Consumer
	pending     *prometheus.Desc
	ackPending  *prometheus.Desc
	redelivered *prometheus.Desc
	up          *prometheus.Desc
}

// NewQueueCollector returns a collector that reads cons's info on each
// scrape: jobs waiting, jobs being worked on, and jobs redelivered and not
// yet acknowledged.
func NewQueueCollector(cons jetstream.Consumer) prometheus.Collector {
	return &queueCollector{
		cons: cons,
		pending: prometheus.NewDesc("sigfollow_queue_jobs_pending",
			"Jobs in the stream not yet delivered to any worker.", nil, nil),
		ackPending: prometheus.NewDesc("sigfollow_queue_jobs_in_progress",
			"Jobs delivered to a worker and not yet acknowledged.", nil, nil),
		redelivered: prometheus.NewDesc("sigfollow_queue_jobs_redelivered",
			"Jobs delivered more than once and not yet acknowledged.", nil, nil),
		up: prometheus.NewDesc("sigfollow_queue_info_up",
			"1 if the consumer's info could be read on this scrape, else 0.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.up
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.cons.Info(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
}
