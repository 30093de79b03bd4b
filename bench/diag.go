package main

import (
	"bufio"
	"bytes"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Diagnostics: a few of the system's own metrics around each single-chat
// step (-diag), to see where latency goes without a profiler.

type samples map[string]float64 // "name{labels}" → value

// parseProm parses Prometheus text format into samples.
func parseProm(b []byte) samples {
	out := samples{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the samples whose key starts with name and contains every filter.
func (s samples) sum(name string, filters ...string) float64 {
	t := 0.0
outer:
	for k, v := range s {
		if !strings.HasPrefix(k, name) || (len(k) > len(name) && k[len(name)] != '{') {
			continue
		}
		for _, f := range filters {
			if !strings.Contains(k, f) {
				continue outer
			}
		}
		t += v
	}
	return t
}

func (sys *system) systemMetrics() samples {
	all := samples{}
	if c := sys.stack.Connector; c != nil {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for k, v := range parseProm(rec.Body.Bytes()) {
			all[k] = v
		}
	}
	g := sys.stack.Gateways()[0]
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g.Metrics().Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for k, v := range parseProm(rec.Body.Bytes()) {
		all[k] = v
	}
	return all
}

// diagLine summarises the change between two scrapes.
func diagLine(a, b samples) string {
	d := func(name string, f ...string) float64 { return b.sum(name, f...) - a.sum(name, f...) }
	inv := d("easychat_connector_invocations_total", `function="transfer`)
	msgs := d("easychat_connector_messages_consumed_total", "msg-chat-transfer")
	invSec := d("easychat_connector_invoke_duration_seconds_sum", `function="transfer`)
	chats := d("easychat_gateway_function_call_seconds_count", `function="chat"`)
	chatSec := d("easychat_gateway_function_call_seconds_sum", `function="chat"`)
	pushes := d("easychat_gateway_push_deliveries_total")
	var parts []string
	if inv > 0 {
		parts = append(parts, "transfer invocations "+strconv.FormatFloat(inv, 'f', 0, 64)+
			", msgs/invocation "+strconv.FormatFloat(msgs/inv, 'f', 1, 64)+
			", mean invocation "+dur(secs(invSec/inv)))
	}
	if chats > 0 {
		parts = append(parts, "chat calls "+strconv.FormatFloat(chats, 'f', 0, 64)+", mean chat call "+dur(secs(chatSec/chats)))
	}
	parts = append(parts, "push deliveries "+strconv.FormatFloat(pushes, 'f', 0, 64))
	return strings.Join(parts, "; ")
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
