// Package metrics holds the gateway's Prometheus collectors. Each gateway
// Server gets its own registry so several instances can run in one process
// (the dev stack and the end-to-end tests do) without registration clashes.
package metrics

import (
	"easychat/pkg/frame"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is one gateway instance's set of collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Connections     prometheus.Gauge
	FramesIn        *prometheus.CounterVec // by frameType ("invalid" for undecodable input)
	FramesOut       *prometheus.CounterVec // by frameType
	FunctionSeconds *prometheus.HistogramVec
	BatchSize       prometheus.Histogram // calls per batched request (chat)
	PushDeliveries  prometheus.Counter   // frames queued to sockets by /internal/push
	PushMissing     prometheus.Counter   // users in a push with no socket here
	SlowDrops       prometheus.Counter
	AuthFailures    *prometheus.CounterVec // by reason
	AcksPending     prometheus.Gauge
	AckGiveUps      prometheus.Counter
	Rejected        *prometheus.CounterVec // frames refused, by reason
	FileRequests    *prometheus.CounterVec // /files/ requests, by op and status
	FileBytes       *prometheus.CounterVec // file bytes, by direction (in, out)
}

// New returns collectors registered on a fresh registry, together with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "easychat_gateway_connections",
			Help: "Open websocket connections.",
		}),
		FramesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_frames_in_total",
			Help: "Frames received from clients, by frame type.",
		}, []string{"type"}),
		FramesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_frames_out_total",
			Help: "Frames written to clients, by frame type.",
		}, []string{"type"}),
		FunctionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "easychat_gateway_function_call_seconds",
			Help:    "Latency of function calls, by function and outcome (ok, error, unavailable).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"function", "outcome"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "easychat_gateway_batch_calls",
			Help:    "Calls (chat frames of any sockets) per batched function request.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		PushDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easychat_gateway_push_deliveries_total",
			Help: "Frames queued to sockets by internal push.",
		}),
		PushMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easychat_gateway_push_missing_total",
			Help: "Push recipients that had no socket on this instance.",
		}),
		SlowDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easychat_gateway_slow_client_drops_total",
			Help: "Connections dropped because their send queue was full.",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_auth_failures_total",
			Help: "Rejected websocket handshakes and internal calls, by reason.",
		}, []string{"reason"}),
		AcksPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "easychat_gateway_acks_pending",
			Help: "Rigor-mode acks waiting for the client's echo.",
		}),
		AckGiveUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easychat_gateway_ack_giveups_total",
			Help: "Rigor-mode acks the client never echoed after all resends.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_frames_rejected_total",
			Help: "Client frames answered with an error frame, by reason.",
		}, []string{"reason"}),
		FileRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_file_requests_total",
			Help: "Uploads (put) and downloads (get) of files, by HTTP status.",
		}, []string{"op", "status"}),
		FileBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easychat_gateway_file_bytes_total",
			Help: "Bytes of files uploaded (in) and downloaded (out).",
		}, []string{"direction"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Connections, m.FramesIn, m.FramesOut, m.FunctionSeconds, m.BatchSize, m.PushDeliveries,
		m.PushMissing, m.SlowDrops, m.AuthFailures, m.AcksPending, m.AckGiveUps, m.Rejected,
		m.FileRequests, m.FileBytes,
	)
	return m
}

// TypeLabel names a frame type for the frames_in/out label.
func TypeLabel(t frame.Type) string {
	switch t {
	case frame.Data:
		return "data"
	case frame.Ping:
		return "ping"
	case frame.Ack:
		return "ack"
	case frame.NoAck:
		return "noAck"
	case frame.Error:
		return "error"
	}
	return "other"
}
