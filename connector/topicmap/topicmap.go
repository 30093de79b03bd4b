// Package topicmap keeps the connector-sdk TopicMap (Kafka topic → functions
// whose `topic` annotation names it) in step with the FaaS gateway, so
// functions deployed after the connector started still get their messages.
package topicmap

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfaas/connector-sdk/types"
	"github.com/openfaas/faas-provider/auth"
)

// Delimiter separates several topics in one `topic` annotation.
const Delimiter = ","

// Refresher rebuilds the topic map from the gateway's /system/functions.
type Refresher struct {
	topics   *types.TopicMap
	builder  *types.FunctionLookupBuilder
	interval time.Duration
	timeout  time.Duration
	logger   *slog.Logger

	synced   atomic.Bool
	inFlight atomic.Bool // the SDK's Build has no context: at most one at a time

	mu      sync.Mutex
	updated chan struct{} // closed and replaced after every successful sync
	last    map[string][]string
}

// New returns a Refresher for the gateway at gatewayURL (e.g.
// http://127.0.0.1:8080). user/password are the gateway's basic-auth
// credentials; an empty user sends none. timeout bounds one rebuild.
func New(gatewayURL, user, password string, interval, timeout time.Duration, logger *slog.Logger) *Refresher {
	var creds *auth.BasicAuthCredentials
	if user != "" {
		creds = &auth.BasicAuthCredentials{User: user, Password: password}
	}
	tm := types.NewTopicMap()
	return &Refresher{
		topics: &tm,
		// The SDK ignores the client argument (it uses http.DefaultClient);
		// Sync bounds each build with timeout instead.
		builder:  types.NewFunctionLookupBuilder(gatewayURL, Delimiter, nil, creds),
		interval: interval,
		timeout:  timeout,
		logger:   logger,
		updated:  make(chan struct{}),
	}
}

// Match returns the functions subscribed to topic (nil if none yet).
func (r *Refresher) Match(topic string) []string { return r.topics.Match(topic) }

// Topics returns the topics some function subscribes to, sorted.
func (r *Refresher) Topics() []string {
	t := r.topics.Topics()
	slices.Sort(t)
	return t
}

// Synced reports whether the map has been loaded from the gateway at least once.
func (r *Refresher) Synced() bool { return r.synced.Load() }

// Updated returns a channel closed at the next successful sync; waiters use it
// to react to a newly deployed function without polling.
func (r *Refresher) Updated() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updated
}

// Run syncs now and then every interval until ctx is done. A failed sync keeps
// the previous map: a gateway hiccup must not unsubscribe every function.
func (r *Refresher) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("topic map sync failed; keeping the previous map", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync rebuilds the map once.
func (r *Refresher) Sync(ctx context.Context) error {
	if !r.inFlight.CompareAndSwap(false, true) {
		return fmt.Errorf("listing functions: previous listing still running")
	}
	type result struct {
		m   map[string][]string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Cleared only when Build returns, even after a timeout, so a hung
		// gateway never accumulates goroutines.
		defer r.inFlight.Store(false)
		m, err := r.builder.Build()
		ch <- result{m, err}
	}()
	tctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var res result
	select {
	case res = <-ch:
	case <-tctx.Done():
		return fmt.Errorf("listing functions: %w", tctx.Err())
	}
	if res.err != nil {
		return fmt.Errorf("listing functions: %w", res.err)
	}
	for topic := range res.m {
		slices.Sort(res.m[topic])
	}
	r.topics.Sync(&res.m)

	r.mu.Lock()
	changed := !mapsEqual(r.last, res.m)
	r.last = res.m
	close(r.updated)
	r.updated = make(chan struct{})
	r.mu.Unlock()

	if changed || !r.synced.Load() {
		r.logger.Info("topic map synced", "topics", res.m)
	}
	r.synced.Store(true)
	return nil
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}
