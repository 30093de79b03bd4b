package idle

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the idler's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	scaled  *prometheus.CounterVec
	idle    *prometheus.GaugeVec
	failure *prometheus.CounterVec
}

// NewMetrics registers the idler's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "easychat", "idler"
	m := &Metrics{
		scaled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "scaled_to_zero_total", Help: "Functions scaled to zero replicas after their zero-duration without invocations."},
			[]string{"function"}),
		idle: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "last_invocation_age_seconds", Help: "Time since a function's invocation count last changed (or it came up from zero), as of the last check."},
			[]string{"function"}),
		failure: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "errors_total", Help: "Failed calls to the OpenFaaS or Kubernetes API, by operation (list, scale)."},
			[]string{"op"}),
	}
	reg.MustRegister(m.scaled, m.idle, m.failure)
	return m
}

func (m *Metrics) scaledDown(fn string) {
	if m != nil {
		m.scaled.WithLabelValues(fn).Inc()
	}
}

func (m *Metrics) idleFor(fn string, d time.Duration) {
	if m != nil {
		m.idle.WithLabelValues(fn).Set(d.Seconds())
	}
}

func (m *Metrics) forget(fn string) {
	if m != nil {
		m.idle.DeleteLabelValues(fn)
	}
}

func (m *Metrics) failed(op string) {
	if m != nil {
		m.failure.WithLabelValues(op).Inc()
	}
}
