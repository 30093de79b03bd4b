package provider

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"easychat/idler/idle"
)

// metrics are the runtime's own series, served by bootstrap's /metrics from
// the default registry next to faas-provider's HTTP metrics.
type metrics struct {
	replicas         *prometheus.GaugeVec
	desired          *prometheus.GaugeVec
	coldStarts       *prometheus.CounterVec
	coldStartSeconds *prometheus.HistogramVec
	replicaStarts    *prometheus.CounterVec
	replicaCrashes   *prometheus.CounterVec
	builds           *prometheus.CounterVec
	buildSeconds     *prometheus.HistogramVec
	idle             *idle.Metrics
}

var (
	metricsOnce sync.Once
	theMetrics  *metrics
)

// registerMetrics registers once per process: the registry is global and a
// second registration would panic.
func registerMetrics() *metrics {
	metricsOnce.Do(func() {
		const ns, sub = "easychat", "faas"
		fn := []string{"function"}
		m := &metrics{
			replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
				Name: "replicas_ready", Help: "Replicas passing their health check, per function."}, fn),
			desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
				Name: "replicas_desired", Help: "Replicas wanted, per function."}, fn),
			coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "cold_starts_total", Help: "Scale-from-zero events triggered by an invocation."}, fn),
			coldStartSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
				Name: "cold_start_seconds", Help: "Time from a scale-from-zero trigger to the first ready replica.",
				Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, fn),
			replicaStarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "replica_starts_total", Help: "Replica processes started."}, fn),
			replicaCrashes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "replica_crashes_total", Help: "Replica processes that exited without being asked to."}, fn),
			builds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "builds_total", Help: "Function builds by result (built, unchanged, failed)."}, []string{"function", "result"}),
			buildSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
				Name: "build_seconds", Help: "Duration of function builds that ran the compiler.",
				Buckets: []float64{.5, 1, 2, 5, 10, 20, 40, 80, 160}}, fn),
		}
		m.idle = idle.NewMetrics(prometheus.DefaultRegisterer)
		prometheus.MustRegister(m.replicas, m.desired, m.coldStarts, m.coldStartSeconds,
			m.replicaStarts, m.replicaCrashes, m.builds, m.buildSeconds)
		theMetrics = m
	})
	return theMetrics
}

func (m *metrics) observeReplicas(f *function) {
	m.replicas.WithLabelValues(f.name).Set(float64(f.readyCount()))
	m.desired.WithLabelValues(f.name).Set(float64(f.desired))
}

func (m *metrics) forget(name string) {
	m.replicas.DeleteLabelValues(name)
	m.desired.DeleteLabelValues(name)
}
