// Package telemetry holds the process's metrics: one Prometheus registry
// (never the global default one), the request metrics of the gateway and
// of every Connect service, and the handler that exposes them at /metrics.
//
// Metric names:
//
//	tradex_http_requests_total{method,route,status}      gateway requests answered
//	tradex_http_request_duration_seconds{method,route}   their latency
//	tradex_rpc_requests_total{procedure,code}            Connect calls handled ("ok" or the Connect code)
//	tradex_rpc_duration_seconds{procedure}               their latency (a stream: its whole life)
//
// plus what components add with GaugeFunc and CounterFunc (WebSocket
// connections, ...) and the Go runtime and process collectors.
package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the process's registry and request metrics. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	rpcRequests  *prometheus.CounterVec
	rpcDuration  *prometheus.HistogramVec
}

// latencyBuckets span 100 µs to 10 s.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

// New returns metrics with the request metrics and the Go runtime and
// process collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_http_requests_total", Help: "Gateway HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradex_http_request_duration_seconds", Help: "Gateway HTTP request latency, by method and route pattern.",
			Buckets: latencyBuckets,
		}, []string{"method", "route"}),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradex_rpc_requests_total", Help: "Connect calls handled, by procedure and outcome (ok or the Connect code).",
		}, []string{"procedure", "code"}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradex_rpc_duration_seconds", Help: "Connect call latency by procedure; for a stream its whole life.",
			Buckets: latencyBuckets,
		}, []string{"procedure"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.rpcRequests, m.rpcDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registerer is where a component of the process (the Kafka bridge)
// registers its own metrics, served by Handler.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveHTTP records one answered gateway request. route is the route's
// pattern (/v1/orders/:orderId), never the raw path, so that the label
// stays bounded.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// GaugeFunc registers a gauge read from f at every scrape.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterFunc registers a counter read from f at every scrape; f must
// never decrease.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Interceptor records every Connect call a handler serves.
func (m *Metrics) Interceptor() connect.Interceptor { return interceptor{m} }

type interceptor struct{ m *Metrics }

// WrapUnary records a unary call.
func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := time.Now()
		resp, err := next(ctx, req)
		i.m.observeRPC(req.Spec().Procedure, err, time.Since(start))
		return resp, err
	}
}

// WrapStreamingClient leaves clients alone.
func (interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler records a stream when it ends.
func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		i.m.observeRPC(conn.Spec().Procedure, err, time.Since(start))
		return err
	}
}

func (m *Metrics) observeRPC(procedure string, err error, d time.Duration) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	m.rpcRequests.WithLabelValues(procedure, code).Inc()
	m.rpcDuration.WithLabelValues(procedure).Observe(d.Seconds())
}

// GaugesFunc registers a gauge with labels whose values are read at every
// scrape: collect calls emit once per series.
func (m *Metrics) GaugesFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	m.reg.MustRegister(gaugesFunc{desc: prometheus.NewDesc(name, help, labels, nil), collect: collect})
}

// gaugesFunc is a collector of labelled gauges read at scrape time.
type gaugesFunc struct {
	desc    *prometheus.Desc
	collect func(emit func(value float64, labelValues ...string))
}

// Describe implements prometheus.Collector.
func (g gaugesFunc) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g gaugesFunc) Collect(ch chan<- prometheus.Metric) {
	g.collect(func(v float64, labelValues ...string) {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, labelValues...)
	})
}
