package consume

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics live on the Connector's own registry so several connectors (or a
// dev stack embedding one) never collide on the global one.
type metrics struct {
	reg          *prometheus.Registry
	consumed     *prometheus.CounterVec   // topic
	invocations  *prometheus.CounterVec   // function, status
	retries      *prometheus.CounterVec   // topic, function
	deadLettered *prometheus.CounterVec   // topic, function
	waiting      *prometheus.CounterVec   // topic: waits for a subscribed function
	commitErrors prometheus.Counter       //
	latency      *prometheus.HistogramVec // function
	lag          *prometheus.GaugeVec     // topic, partition
	heldKeys     *prometheus.GaugeVec     // topic: keys with a lane (held aside)
	heldMessages *prometheus.GaugeVec     // topic: records in lanes, not yet ended
	outageHolds  *prometheus.CounterVec   // topic: records kept past MaxAttempts because nothing got through
}

func newMetrics() *metrics {
	const ns = "easychat_connector"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "messages_consumed_total", Help: "Kafka messages fetched."}, []string{"topic"}),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "invocations_total", Help: "Function invocations by HTTP status (\"error\": no response)."},
			[]string{"function", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "retries_total", Help: "Failed deliveries that will be retried."}, []string{"topic", "function"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "dead_lettered_total", Help: "Messages written to the dead-letter topic."}, []string{"topic", "function"}),
		waiting: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "no_function_waits_total", Help: "Times a partition waited because no function subscribes to its topic."},
			[]string{"topic"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "commit_errors_total", Help: "Failed offset commits (retried with the next commit)."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
			Name: "invoke_duration_seconds", Help: "Function call latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"function"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns,
			Name: "consumer_lag", Help: "Messages behind the partition end at the last commit (end as seen at fetch)."},
			[]string{"topic", "partition"}),
		heldKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns,
			Name: "held_keys", Help: "Keys held aside after a failed or slow call; their later records wait behind it."},
			[]string{"topic"}),
		outageHolds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "outage_holds_total", Help: "Records that reached MaxAttempts while nothing on their partition got through, kept and retried instead of dead-lettered."},
			[]string{"topic"}),
		heldMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns,
			Name: "held_messages", Help: "Records of held keys not yet delivered or dead-lettered."},
			[]string{"topic"}),
	}
	m.reg.MustRegister(m.consumed, m.invocations, m.retries, m.deadLettered, m.waiting,
		m.commitErrors, m.latency, m.lag, m.heldKeys, m.heldMessages, m.outageHolds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
