package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"easychat/connector/topicmap"
	"easychat/connector/trigger"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
)

// Connector consumes Kafka and invokes functions. Create it with New, start
// it with Run.
type Connector struct {
	cfg     Config
	logger  *slog.Logger
	topics  *topicmap.Refresher
	client  *http.Client
	signer  *sign.Signer
	dead    *kafka.Writer
	metrics *metrics
	running atomic.Bool
}

// New validates cfg (zero fields take defaults; an empty or short
// InternalKey is refused) and prepares a Connector. It connects to nothing
// until Run.
func New(cfg Config, logger *slog.Logger) (*Connector, error) {
	cfg = cfg.withDefaults()
	// The development key is public: signing with it (or with a guessable
	// short key) would let anyone forge calls to the functions.
	key, err := secret.Check(secret.Internal, "INTERNAL_KEY", cfg.InternalKey, sign.DevKey)
	if err != nil {
		return nil, fmt.Errorf("connector: %w", err)
	}
	cfg.InternalKey = key
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "connector")
	if _, err := http.NewRequest(http.MethodGet, cfg.GatewayURL, nil); err != nil {
		return nil, fmt.Errorf("connector: gateway url %q: %w", cfg.GatewayURL, err)
	}
	probe := cfg.Topics
	if len(probe) == 0 {
		probe = []string{"topics-from-the-map"}
	}
	rc := readerConfig(cfg, probe, logger)
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("connector: kafka reader config: %w", err)
	}
	c := &Connector{
		cfg:     cfg,
		logger:  logger,
		topics:  topicmap.New(cfg.GatewayURL, cfg.GatewayUser, cfg.GatewayPassword, cfg.RebuildInterval, cfg.UpstreamTimeout, logger),
		client:  trigger.NewClient(cfg.UpstreamTimeout),
		signer:  sign.New(cfg.InternalKey),
		metrics: newMetrics(),
		dead: &kafka.Writer{
			Addr:                   kafka.TCP(cfg.Brokers...),
			Topic:                  cfg.DeadLetterTopic,
			Balancer:               &kafka.Hash{},
			RequiredAcks:           kafka.RequireAll,
			BatchTimeout:           5 * time.Millisecond,
			AllowAutoTopicCreation: true,
			Logger:                 kafkaLogger(logger, slog.LevelDebug),
			ErrorLogger:            kafkaLogger(logger, slog.LevelWarn),
		},
	}
	return c, nil
}

// Ready reports whether the topic map has been loaded from the gateway once.
func (c *Connector) Ready() bool { return c.topics.Synced() }

// Handler serves /metrics, /healthz (process alive) and /readyz (topic map
// synced), for embedding in another server.
func (c *Connector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Ready() {
			http.Error(w, "topic map not synced yet", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// Run consumes until ctx is done, then stops fetching, lets in-flight calls
// finish (bounded by ShutdownTimeout), commits what was delivered and closes
// the consumer. It returns nil after a clean shutdown. A Connector runs once.
func (c *Connector) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("connector: Run called twice")
	}
	defer func() {
		if err := c.dead.Close(); err != nil {
			c.logger.Warn("closing dead-letter writer", "err", err)
		}
	}()

	if c.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", c.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("connector: listening on %s: %w", c.cfg.HTTPAddr, err)
		}
		srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				c.logger.Error("metrics server stopped", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		c.logger.Info("serving metrics and health", "addr", ln.Addr().String())
	}

	var bg sync.WaitGroup
	defer bg.Wait()
	mapCtx, stopMap := context.WithCancel(ctx)
	defer stopMap()
	bg.Go(func() { c.topics.Run(mapCtx) })

	if len(c.cfg.Topics) > 0 {
		return c.runSession(ctx, c.cfg.Topics)
	}
	return c.followTopicMap(ctx)
}

// followTopicMap consumes the topics the map knows, restarting the consumer
// (a group rebalance) whenever that set changes.
func (c *Connector) followTopicMap(ctx context.Context) error {
	for ctx.Err() == nil {
		updated := c.topics.Updated()
		topics := c.topics.Topics()
		if len(topics) == 0 {
			select {
			case <-ctx.Done():
			case <-updated:
			}
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			for {
				select {
				case <-sctx.Done():
					return
				case <-updated:
				}
				updated = c.topics.Updated()
				if now := c.topics.Topics(); !slices.Equal(now, topics) {
					c.logger.Info("subscribed topics changed; restarting consumer", "from", topics, "to", now)
					cancel()
					return
				}
			}
		}()
		err := c.runSession(sctx, topics)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func readerConfig(cfg Config, topics []string, logger *slog.Logger) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:     cfg.Brokers,
		GroupID:     cfg.GroupID,
		GroupTopics: topics,
		// Deliver as soon as one message is there; kafka-go's defaults
		// (MaxWait 10 s, ReadBatchTimeout 10 s) are tuned for throughput.
		MinBytes:         1,
		MaxBytes:         10 << 20,
		MaxWait:          cfg.MaxWait,
		ReadBatchTimeout: 500 * time.Millisecond,
		// Synchronous commits: CommitMessages returns once the broker has
		// the offset, which is what "commit after 2xx" means.
		CommitInterval:         0,
		StartOffset:            kafka.FirstOffset,
		HeartbeatInterval:      cfg.HeartbeatInterval,
		SessionTimeout:         cfg.SessionTimeout,
		RebalanceTimeout:       cfg.RebalanceTimeout,
		JoinGroupBackoff:       cfg.JoinGroupBackoff,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		Logger:                 kafkaLogger(logger, slog.LevelDebug),
		ErrorLogger:            kafkaLogger(logger, slog.LevelWarn),
	}
}

// runSession consumes a fixed topic list until ctx is done. Each topic gets
// its own group member (Reader), so a topic whose partitions wait (say, no
// function deployed yet for read receipts) cannot stall the others through
// the shared fetch stream.
func (c *Connector) runSession(ctx context.Context, topics []string) error {
	for _, t := range topics {
		rc := readerConfig(c.cfg, []string{t}, c.logger)
		if err := rc.Validate(); err != nil {
			return fmt.Errorf("connector: kafka reader config for %s: %w", t, err)
		}
	}
	c.logger.Info("consuming", "topics", topics, "group", c.cfg.GroupID, "brokers", c.cfg.Brokers)

	// Workers stop taking messages when ctx is done; their calls and
	// commits run on work, which outlives ctx by at most ShutdownTimeout.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	workersDone := make(chan struct{})
	go func() {
		select {
		case <-workersDone:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(c.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-workersDone:
		case <-t.C:
			c.logger.Warn("shutdown timeout: abandoning in-flight calls (their messages stay uncommitted)")
			stopWork()
		}
	}()

	var wg sync.WaitGroup
	for _, t := range topics {
		wg.Go(func() { c.consumeTopic(ctx, work, t) })
	}
	wg.Wait()
	close(workersDone)
	c.logger.Info("consumer stopped", "topics", topics)
	return nil
}

// consumeTopic is one group member: a fetch loop dispatching to one worker
// per partition. It returns after the workers finished and the reader closed.
func (c *Connector) consumeTopic(ctx, work context.Context, topic string) {
	reader := kafka.NewReader(readerConfig(c.cfg, []string{topic}, c.logger))
	var wg sync.WaitGroup
	workers := map[partitionKey]*worker{}
	for {
		msg, err := reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				break
			}
			c.logger.Warn("fetching from kafka", "topic", topic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		c.metrics.consumed.WithLabelValues(msg.Topic).Inc()
		key := partitionKey{msg.Topic, msg.Partition}
		w := workers[key]
		if w == nil {
			w = c.newWorker(key, reader)
			workers[key] = w
			wg.Go(func() { w.run(ctx, work) })
		}
		// A full queue blocks this fetch loop, and with it the topic's
		// other partitions: kafka-go's group reader is one stream per
		// member. QueueSize is the slack before that happens.
		select {
		case w.queue <- msg:
		case <-ctx.Done():
		}
	}
	wg.Wait() // workers commit what they delivered before the reader closes
	if err := reader.Close(); err != nil {
		c.logger.Warn("closing kafka reader", "topic", topic, "err", err)
	}
}

// kafkaLogger adapts kafka-go's printf logging to slog.
func kafkaLogger(logger *slog.Logger, level slog.Level) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		if logger.Enabled(context.Background(), level) {
			logger.Log(context.Background(), level, "kafka: "+strings.TrimSpace(fmt.Sprintf(format, args...)))
		}
	})
}
