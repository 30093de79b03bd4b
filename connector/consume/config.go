package consume

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"easychat/pkg/envconf"
	"easychat/pkg/event"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
)

// Config configures a Connector. Zero fields take the defaults listed in
// ConfigFromEnv, except Topics (empty means "the topics of the topic map"),
// HTTPAddr (empty means Run serves no HTTP; use Handler) and InternalKey
// (required).
type Config struct {
	Brokers []string // Kafka bootstrap brokers
	GroupID string   // consumer group
	// Topics to consume. Empty: every topic some function subscribes to,
	// following the topic map (the consumer restarts when that set changes).
	Topics []string
	// DeadLetterTopic receives messages no function accepted after MaxAttempts.
	DeadLetterTopic string

	GatewayURL      string // FaaS gateway, e.g. http://127.0.0.1:8080
	GatewayUser     string // basic auth for /system/functions; empty: none
	GatewayPassword string
	// InternalKey is the HMAC key signing every invocation (pkg/sign): at
	// least 16 bytes; New refuses an empty or shorter one unless the
	// development switch (EASYCHAT_DEV=1) is on.
	InternalKey string

	UpstreamTimeout time.Duration // one function call
	RebuildInterval time.Duration // topic map refresh period

	RetryMin    time.Duration // first retry delay, doubled per failure
	RetryMax    time.Duration // cap of the retry delay
	MaxAttempts int           // tries before a message goes to DeadLetterTopic
	BatchMax    int           // messages per invocation; >1 sends JSON arrays
	// BatchMaxBytes bounds an array body (BatchMax > 1): a batch stops
	// growing before it would pass it; a single record is always sent.
	BatchMaxBytes int
	QueueSize     int // fetched messages buffered per partition; also the bound on held ones
	// Patience is how long a partition waits for a call before it holds the
	// call's keys aside and goes on with its other keys (see the package doc).
	Patience time.Duration

	// ShutdownTimeout bounds how long in-flight calls may run after Run's
	// context is cancelled.
	ShutdownTimeout time.Duration

	// Consumer group timings (kafka-go's defaults are 30 s / 3 s / 30 s / 5 s).
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
	// MaxWait bounds one fetch: kafka-go asks the broker to wait MaxWait−1s
	// for new data (a quarter less below 1s) and gives up on the connection
	// at MaxWait, so the rest is slack for a busy broker. With MinBytes 1 it
	// bounds idle polling, not latency. Small values (the old 100ms left a
	// 25ms slack) make a loaded broker miss the deadline: the reader then
	// drops the connection and backs off, which cost seconds of latency.
	MaxWait time.Duration

	HTTPAddr string // metrics and health; empty: not served by Run
}

// Defaults.
const (
	DefaultBrokers         = "127.0.0.1:9092"
	DefaultGroupID         = "easychat-connector"
	DefaultTopics          = event.TopicChat + "," + event.TopicRead
	DefaultGatewayURL      = "http://127.0.0.1:8080"
	DefaultHTTPAddr        = "127.0.0.1:8099"
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultRebuildInterval = 3 * time.Second
	DefaultRetryMin        = 100 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
	DefaultMaxAttempts     = 10
	DefaultBatchMax        = 1
	DefaultBatchMaxBytes   = 1 << 20
	DefaultPatience        = 1 * time.Second
	DefaultQueueSize       = 512
	DefaultShutdownTimeout = 10 * time.Second
	DefaultSessionTimeout  = 10 * time.Second
	DefaultHeartbeat       = 1 * time.Second
	DefaultRebalance       = 10 * time.Second
	DefaultJoinBackoff     = 500 * time.Millisecond
	DefaultMaxWait         = 2 * time.Second
)

// OpenFaaS secret names for the gateway's basic auth.
const (
	SecretBasicAuthUser     = "basic-auth-user"
	SecretBasicAuthPassword = "basic-auth-password"
)

// ConfigFromEnv reads the configuration from the environment:
//
//	KAFKA_BROKERS            comma-separated brokers             (127.0.0.1:9092)
//	GROUP_ID                 consumer group                      (easychat-connector)
//	TOPICS                   comma-separated topics; set to ""
//	                         to follow the topic map             (msg-chat-transfer,msg-read-transfer)
//	DEAD_LETTER_TOPIC        dead-letter topic                   (msg-dead-letter)
//	GATEWAY_URL              FaaS gateway                        (http://127.0.0.1:8080)
//	BASIC_AUTH_USER          gateway basic auth user; secret file basic-auth-user wins   (none)
//	BASIC_AUTH_PASSWORD      gateway password; secret file basic-auth-password wins      (none)
//	INTERNAL_KEY             signing key, at least 16 bytes; secret file internal-key wins
//	                         (required; with EASYCHAT_DEV=1 a missing one is sign.DevKey)
//	UPSTREAM_TIMEOUT         one function call                   (30s)
//	REBUILD_INTERVAL         topic map refresh                   (3s)
//	RETRY_MIN                first retry delay                   (100ms)
//	RETRY_MAX                retry delay cap                     (5s)
//	MAX_ATTEMPTS             tries before dead-lettering         (10)
//	BATCH_MAX                messages per invocation             (1)
//	BATCH_MAX_BYTES          array body bound when BATCH_MAX > 1 (1048576)
//	QUEUE_SIZE               buffered messages per partition,
//	                         and held messages per partition     (512)
//	HOLD_AFTER               wait for a call before holding its
//	                         keys aside (the partition goes on)  (1s)
//	SHUTDOWN_TIMEOUT         grace for in-flight calls           (10s)
//	KAFKA_SESSION_TIMEOUT    consumer group session timeout      (10s)
//	KAFKA_HEARTBEAT_INTERVAL consumer group heartbeat            (1s)
//	KAFKA_REBALANCE_TIMEOUT  consumer group rebalance timeout    (10s)
//	KAFKA_MAX_WAIT           fetch wait, incl. network slack     (2s)
//	CONNECTOR_HTTP_ADDR      /metrics /healthz /readyz           (127.0.0.1:8099)
//
// The command also reads LOG_LEVEL (debug, info, warn or error; default info;
// anything else stops it at start).
// Secret files live under SECRET_MOUNT_PATH (default /var/openfaas/secrets).
// Durations use Go syntax (250ms, 5s).
func ConfigFromEnv() (Config, error) {
	var r envconf.Reader
	cfg := Config{
		Brokers:         splitList(r.String("KAFKA_BROKERS", DefaultBrokers)),
		GroupID:         r.String("GROUP_ID", DefaultGroupID),
		DeadLetterTopic: r.String("DEAD_LETTER_TOPIC", event.TopicDead),
		GatewayURL:      r.String("GATEWAY_URL", DefaultGatewayURL),
		GatewayUser:     secret.Read(SecretBasicAuthUser, "BASIC_AUTH_USER", ""),
		GatewayPassword: secret.Read(SecretBasicAuthPassword, "BASIC_AUTH_PASSWORD", ""),
		HTTPAddr:        r.String("CONNECTOR_HTTP_ADDR", DefaultHTTPAddr),
		// TOPICS set but empty means "follow the topic map".
		Topics: r.List("TOPICS", splitList(DefaultTopics)),

		UpstreamTimeout:   r.Duration("UPSTREAM_TIMEOUT", DefaultUpstreamTimeout),
		RebuildInterval:   r.Duration("REBUILD_INTERVAL", DefaultRebuildInterval),
		RetryMin:          r.Duration("RETRY_MIN", DefaultRetryMin),
		RetryMax:          r.Duration("RETRY_MAX", DefaultRetryMax),
		ShutdownTimeout:   r.Duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
		SessionTimeout:    r.Duration("KAFKA_SESSION_TIMEOUT", DefaultSessionTimeout),
		HeartbeatInterval: r.Duration("KAFKA_HEARTBEAT_INTERVAL", DefaultHeartbeat),
		RebalanceTimeout:  r.Duration("KAFKA_REBALANCE_TIMEOUT", DefaultRebalance),
		MaxWait:           r.Duration("KAFKA_MAX_WAIT", DefaultMaxWait),
		Patience:          r.Duration("HOLD_AFTER", DefaultPatience),
		MaxAttempts:       r.Int("MAX_ATTEMPTS", DefaultMaxAttempts, 1),
		BatchMax:          r.Int("BATCH_MAX", DefaultBatchMax, 1),
		QueueSize:         r.Int("QUEUE_SIZE", DefaultQueueSize, 1),
		BatchMaxBytes:     r.Int("BATCH_MAX_BYTES", DefaultBatchMaxBytes, 1),
	}
	key, err := secret.Require(secret.Internal, "INTERNAL_KEY", sign.DevKey)
	if err != nil {
		r.Fail("INTERNAL_KEY", err)
	}
	cfg.InternalKey = key
	if len(cfg.Brokers) == 0 {
		r.Fail("KAFKA_BROKERS", errors.New("empty"))
	}
	if err := r.Err(); err != nil {
		return cfg, fmt.Errorf("connector config: %w", err)
	}
	return cfg, nil
}

// withDefaults fills zero fields so an embedder can set only what it needs.
func (c Config) withDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = splitList(DefaultBrokers)
	}
	setS := func(p *string, d string) {
		if *p == "" {
			*p = d
		}
	}
	setD := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setI := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setS(&c.GroupID, DefaultGroupID)
	setS(&c.DeadLetterTopic, event.TopicDead)
	setS(&c.GatewayURL, DefaultGatewayURL)
	setD(&c.UpstreamTimeout, DefaultUpstreamTimeout)
	setD(&c.RebuildInterval, DefaultRebuildInterval)
	setD(&c.RetryMin, DefaultRetryMin)
	setD(&c.RetryMax, DefaultRetryMax)
	setD(&c.Patience, DefaultPatience)
	setD(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setD(&c.SessionTimeout, DefaultSessionTimeout)
	setD(&c.HeartbeatInterval, DefaultHeartbeat)
	setD(&c.RebalanceTimeout, DefaultRebalance)
	setD(&c.JoinGroupBackoff, DefaultJoinBackoff)
	setD(&c.MaxWait, DefaultMaxWait)
	setI(&c.MaxAttempts, DefaultMaxAttempts)
	setI(&c.BatchMax, DefaultBatchMax)
	setI(&c.QueueSize, DefaultQueueSize)
	setI(&c.BatchMaxBytes, DefaultBatchMaxBytes)
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
