package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Stages of POST /media timed by sigfollow_ingest_stage_duration_seconds.
const (
	stageReceive = "receive" // reading and validating the multipart body
	stageCache   = "cache"   // looking the file up in the media-id cache
	stageStage   = "stage"   // writing the file to the object store (or into the job)
	stagePublish = "publish" // publishing the job to JetStream
	stageWait    = "wait"    // waiting for the worker's answer
)

// Metrics are ingest's Prometheus metrics. The exported fields are for the
// parts of ingest that count their own outcomes.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bodyBytes   *prometheus.CounterVec
	fileBytes   prometheus.Histogram
	stages      *prometheus.HistogramVec
	rateLimited prometheus.Counter
	limitErrors prometheus.Counter
	signatures  *prometheus.CounterVec

	// CacheLookups counts media-id cache lookups by result ("hit" or
	// "miss").
	CacheLookups *prometheus.CounterVec
}

// NewMetrics registers ingest's metrics in reg, a registry of this process's
// own (not the global default one).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_ingest_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sigfollow_ingest_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route", "method"}),
		bodyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_ingest_request_body_bytes_total",
			Help: "Request body bytes declared by Content-Length, by route pattern.",
		}, []string{"route"}),
		fileBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sigfollow_ingest_upload_file_bytes",
			Help:    "Size of accepted files.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 9), // 1 KiB … 64 MiB
		}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sigfollow_ingest_stage_duration_seconds",
			Help:    "Time spent in each step of POST /media: receive, cache, stage, publish, wait.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"stage"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigfollow_ingest_rate_limited_total",
			Help: "Requests refused with 429 because their API key was over its rate limit.",
		}),
		limitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigfollow_ingest_rate_limit_errors_total",
			Help: "Requests let through unchecked because the shared rate-limit state could not be reached.",
		}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_ingest_signature_checks_total",
			Help: "Request signature checks on POST /media, by result (valid, missing, malformed, expired, mismatch).",
		}, []string{"result"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigfollow_ingest_cache_lookups_total",
			Help: "Media-id cache lookups, by result (hit or miss).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bodyBytes, m.fileBytes, m.stages, m.rateLimited,
		m.limitErrors, m.signatures, m.CacheLookups)
	return m
}

// handler serves the registry in Prometheus' text format.
func (m *Metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}

// observeRequest counts one answered request. Unmatched paths share one
// route label so that scanners cannot grow the label set.
func (m *Metrics) observeRequest(c echo.Context, d time.Duration) {
	route := c.Path()
	if route == "" || c.Response().Status == http.StatusNotFound && route == "/*" {
		route = "unmatched"
	}
	method := c.Request().Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	if n := c.Request().ContentLength; n > 0 {
		m.bodyBytes.WithLabelValues(route).Add(float64(n))
	}
}

// since records the time since start for stage.
func (m *Metrics) since(stage string, start time.Time) {
	m.stages.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}
