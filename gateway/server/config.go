package server

import (
	"fmt"
	"net"
	"strings"
	"time"

	"easychat/gateway/session"
	"easychat/pkg/blob"
	"easychat/pkg/envconf"
	"easychat/pkg/frame"
	"easychat/pkg/secret"
	"easychat/pkg/sign"
	"easychat/pkg/token"
)

// Config configures one gateway instance. Zero fields take the defaults of
// DefaultConfig, so an embedder can set only what it needs.
//
// Environment (ConfigFromEnv), with defaults:
//
//	GATEWAY_ADDR             :10090                 public websocket listener
//	GATEWAY_PATH             /ws                    websocket path
//	GATEWAY_INTERNAL_ADDR    127.0.0.1:10091        internal listener: POST /internal/push, GET /metrics;
//	                                                never expose it to clients
//	GATEWAY_PUSH_URL         http://<internal addr> URL other components use to reach the internal
//	                                                listener (set it when binding 0.0.0.0, e.g. to the pod IP)
//	GATEWAY_INSTANCE_ID      random                 this instance's id in the route registry
//	FAAS_URL                 http://127.0.0.1:8080  OpenFaaS gateway; functions at <FAAS_URL>/function/<name>
//	REDIS_URL                redis://127.0.0.1:6379/0  route registry
//	JWT_SECRET               (required)             HS256 key of user tokens (secret file "jwt-secret" wins)
//	INTERNAL_KEY             (required)             HMAC key between components (secret file "internal-key" wins)
//	                                                Both at least 16 bytes; the gateway refuses to start without
//	                                                them unless EASYCHAT_DEV=1 (then the published dev secrets)
//	GATEWAY_METHODS          (defaults below)       extra/overriding method=function pairs, comma-separated;
//	                                                "method=" removes one. Defaults: conversation.chat=chat,
//	                                                conversation.markChat=mark, conversation.markDelivered=mark,
//	                                                conversation.sync=conversation
//	GATEWAY_ACK_MODE         only                   none | only | rigor (see package gateway/session)
//	GATEWAY_ACK_RESEND       1s                     rigor: resend an unechoed ack this often
//	GATEWAY_ACK_RETRIES      3                      rigor: resends before giving up
//	GATEWAY_MAX_FRAME_BYTES  65536                  larger client frames get an error frame
//	GATEWAY_MAX_PUSH_BYTES   8388608                body limit of /internal/push
//	GATEWAY_READ_BUFFER      1024                   read buffer per socket (bytes); larger frames take more reads
//	GATEWAY_SEND_QUEUE       256                    outgoing frames queued per socket; overflow drops the client
//	GATEWAY_CHAT_QUEUE       64                     chat frames waiting per socket; when full the read
//	                                                pump waits (backpressure) up to GATEWAY_CHAT_QUEUE_WAIT
//	GATEWAY_CHAT_BATCH       256                    chat frames (of all sockets) per request to the chat function
//	                                                while GATEWAY_CHAT_BATCH_INFLIGHT requests are busy; 1 sends each alone
//	GATEWAY_CHAT_BATCH_INFLIGHT 4                   chat requests in flight before frames wait to go as a batch
//	GATEWAY_CHAT_QUEUE_WAIT  10s                    then the frame gets "too many pending frames"
//	GATEWAY_MAX_INFLIGHT     16                     concurrent non-chat requests per socket; overflow → error frame
//	GATEWAY_MAX_ONLINE_USERS 1000                   userIds per user.online request
//	GATEWAY_ROUTE_TTL        30s                    route/instance entry lifetime; refreshed every TTL/3
//	GATEWAY_FUNCTION_TIMEOUT 10s                    per function call; then "temporarily unavailable, retry"
//	GATEWAY_DRAIN_TIMEOUT    15s                    on SIGTERM, wait this long for in-flight calls
//	GATEWAY_PONG_WAIT        60s                    a client silent this long is disconnected; pinged at 9/10 of it
//	GATEWAY_WRITE_WAIT       10s                    bound on one socket write
//	GATEWAY_ALLOWED_ORIGINS  (any)                  comma-separated browser origins allowed; empty allows any
//	                                                (tokens are not cookies, so cross-site hijacking gains nothing)
//	GATEWAY_FRAME_RATE       50                     frames a socket may send per second (token bucket); over it a
//	                                                frame gets an error frame ("rate limit") and may be resent; 0: no limit
//	GATEWAY_FRAME_BURST      200                    frames a socket may send at once before the rate applies
//	GATEWAY_API_RATE         10                     HTTP API calls per second per user (per client address when
//	                                                anonymous), on this instance; over it: 429; 0: no limit
//	GATEWAY_API_BURST        30                     API calls at once before the rate applies
//	GATEWAY_MAX_SOCKETS_PER_USER 20                 sockets one user may hold on this instance; more get HTTP 429
//	GATEWAY_MAX_PENDING_CONNS 1024                  public connections not (yet) upgraded to an authenticated
//	                                                websocket, in all; more are closed at once
//	GATEWAY_MAX_PENDING_PER_IP 64                   the same, per client address
//	GATEWAY_READ_TIMEOUT     15s                    reading one HTTP request, headers and body (slow clients are cut)
//	GATEWAY_IDLE_TIMEOUT     60s                    an idle keep-alive HTTP connection is closed after this
//	GATEWAY_CHAT_BATCH_BYTES 1048576                bytes of frames per batched request to the chat function
//	                                                (keep it below the function's max_body_bytes, 4 MiB)
//	GATEWAY_TRUSTED_PROXIES  (none)                 comma-separated CIDRs of proxies whose X-Forwarded-For is
//	                                                believed for the client address (limits per address)
//	GATEWAY_API_FUNCTIONS    user,group,conversation,file functions reachable as POST /api/<name> (the HTTP
//	                                                API, authenticated by the same bearer JWT)
//	GATEWAY_FILE_TIMEOUT     5m                     bound on one upload or download at /files/ (body included)
//	GATEWAY_FILE_RATE_MIB    4                      each user's downloads on this instance share this many MiB/s
//	                                                (shaped, not refused); 0: not shaped
//	GATEWAY_FILE_BURST_MIB   64                     MiB a user may download at once before the rate applies
//	GATEWAY_FILE_TRANSFERS   8                      uploads and downloads one user may run at once on this
//	                                                instance; more wait for a turn (30 s, 4 per turn), then 429
//	S3_ENDPOINT, S3_SECURE, S3_REGION, S3_BUCKET, secrets s3-access-key and s3-secret-key: the file
//	                                                store /files/ streams to and from (package blob; main)
//	GATEWAY_LOG_LEVEL        info                   debug | info | warn | error (main only)
type Config struct {
	Addr           string
	Path           string
	InternalAddr   string
	PushURL        string
	InstanceID     string
	FaasURL        string
	RedisURL       string // used by NewRedisRegistry, not by New
	JWTSecret      string
	InternalKey    string
	Methods        map[string]string
	AckMode        session.AckMode
	AckResend      time.Duration
	AckRetries     int
	MaxFrameBytes  int64
	MaxPushBytes   int64
	ReadBuffer     int
	SendQueue      int
	ChatQueue      int
	ChatBatch      int
	ChatInflight   int
	MaxInflight    int
	MaxOnlineUsers int
	RouteTTL       time.Duration
	CallTimeout    time.Duration
	ChatQueueWait  time.Duration
	DrainTimeout   time.Duration
	PongWait       time.Duration
	WriteWait      time.Duration
	AllowedOrigins []string
	APIFunctions   []string

	FrameRate         float64 // frames per second per socket; 0: no limit
	FrameBurst        int
	APIRate           float64 // API calls per second per caller; 0: no limit
	APIBurst          int
	MaxSocketsPerUser int
	MaxPendingConns   int
	MaxPendingPerIP   int
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	ChatBatchBytes    int
	TrustedProxies    []*net.IPNet
	// Files is the object store /files/ streams to and from; nil: the
	// route answers 503 (main builds it from S3_*).
	Files       blob.Store
	FileTimeout time.Duration
	// Each user's downloads through this instance are shaped to FileRate
	// MiB/s (0: not shaped) with bursts of FileBurst MiB, and a user runs at
	// most FileTransfers uploads and downloads at once.
	FileRate      float64
	FileBurst     int
	FileTransfers int
	// Replays remembers the nonces of signed pushes, shared by every
	// instance (a push signed for one instance must not be replayed to
	// another). nil: this instance's memory only.
	Replays sign.Replays
}

// DefaultMethods maps client methods to the functions that serve them.
func DefaultMethods() map[string]string {
	return map[string]string{
		frame.MethodChat:          "chat",
		frame.MethodMarkChat:      "mark",
		frame.MethodMarkDelivered: "mark",
		frame.MethodSync:          "conversation",
		frame.MethodRecall:        "chat",
		frame.MethodEdit:          "chat",
		frame.MethodReact:         "chat",
		frame.MethodHide:          "chat",
	}
}

// DefaultConfig returns the documented defaults. It has no secrets: set
// JWTSecret and InternalKey (New refuses to run without them).
func DefaultConfig() Config {
	return Config{
		Addr:           ":10090",
		Path:           "/ws",
		InternalAddr:   "127.0.0.1:10091",
		FaasURL:        "http://127.0.0.1:8080",
		RedisURL:       "redis://127.0.0.1:6379/0",
		Methods:        DefaultMethods(),
		AckMode:        session.AckOnly,
		AckResend:      time.Second,
		AckRetries:     3,
		MaxFrameBytes:  64 << 10,
		MaxPushBytes:   8 << 20,
		ReadBuffer:     1024,
		SendQueue:      256,
		ChatQueue:      64,
		ChatBatch:      256,
		ChatInflight:   4,
		MaxInflight:    16,
		MaxOnlineUsers: 1000,
		RouteTTL:       30 * time.Second,
		CallTimeout:    10 * time.Second,
		ChatQueueWait:  10 * time.Second,
		DrainTimeout:   15 * time.Second,
		PongWait:       60 * time.Second,
		WriteWait:      10 * time.Second,
		APIFunctions:   []string{"user", "group", "conversation", "file"},
		FileTimeout:    5 * time.Minute,
		FileRate:       4,
		FileBurst:      64,
		FileTransfers:  8,

		FrameRate:         50,
		FrameBurst:        200,
		APIRate:           10,
		APIBurst:          30,
		MaxSocketsPerUser: 20,
		MaxPendingConns:   1024,
		MaxPendingPerIP:   64,
		ReadTimeout:       15 * time.Second,
		IdleTimeout:       60 * time.Second,
		ChatBatchBytes:    1 << 20,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	str(&c.Addr, d.Addr)
	str(&c.Path, d.Path)
	str(&c.InternalAddr, d.InternalAddr)
	str(&c.FaasURL, d.FaasURL)
	str(&c.RedisURL, d.RedisURL)
	if c.Methods == nil {
		c.Methods = d.Methods
	}
	if c.APIFunctions == nil {
		c.APIFunctions = d.APIFunctions
	}
	if c.AckMode == "" {
		c.AckMode = d.AckMode
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	dur(&c.AckResend, d.AckResend)
	dur(&c.RouteTTL, d.RouteTTL)
	dur(&c.CallTimeout, d.CallTimeout)
	dur(&c.ChatQueueWait, d.ChatQueueWait)
	dur(&c.DrainTimeout, d.DrainTimeout)
	dur(&c.PongWait, d.PongWait)
	dur(&c.WriteWait, d.WriteWait)
	dur(&c.ReadTimeout, d.ReadTimeout)
	dur(&c.FileTimeout, d.FileTimeout)
	dur(&c.IdleTimeout, d.IdleTimeout)
	num := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.AckRetries < 0 {
		c.AckRetries = d.AckRetries
	}
	num(&c.SendQueue, d.SendQueue)
	num(&c.ChatQueue, d.ChatQueue)
	num(&c.MaxInflight, d.MaxInflight)
	num(&c.MaxOnlineUsers, d.MaxOnlineUsers)
	num(&c.FrameBurst, d.FrameBurst)
	num(&c.APIBurst, d.APIBurst)
	if c.APIRate < 0 {
		c.APIRate = 0
	}
	num(&c.MaxSocketsPerUser, d.MaxSocketsPerUser)
	num(&c.MaxPendingConns, d.MaxPendingConns)
	num(&c.MaxPendingPerIP, d.MaxPendingPerIP)
	num(&c.ChatBatchBytes, d.ChatBatchBytes)
	num(&c.FileBurst, d.FileBurst)
	num(&c.FileTransfers, d.FileTransfers)
	if c.FileRate < 0 {
		c.FileRate = 0
	}
	if c.FrameRate < 0 {
		c.FrameRate = 0
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxPushBytes <= 0 {
		c.MaxPushBytes = d.MaxPushBytes
	}
	return c
}

// ConfigFromEnv reads the variables listed on Config; every bad value is
// reported at once.
func ConfigFromEnv() (Config, error) {
	c := DefaultConfig()
	var err error
	if c.JWTSecret, err = secret.Require(secret.JWT, "JWT_SECRET", token.DevSecret); err != nil {
		return c, err
	}
	if c.InternalKey, err = secret.Require(secret.Internal, "INTERNAL_KEY", sign.DevKey); err != nil {
		return c, err
	}
	var r envconf.Reader
	c.Addr = r.String("GATEWAY_ADDR", c.Addr)
	c.Path = r.String("GATEWAY_PATH", c.Path)
	c.InternalAddr = r.String("GATEWAY_INTERNAL_ADDR", c.InternalAddr)
	c.PushURL = r.String("GATEWAY_PUSH_URL", c.PushURL)
	c.InstanceID = r.String("GATEWAY_INSTANCE_ID", c.InstanceID)
	c.FaasURL = r.String("FAAS_URL", c.FaasURL)
	c.RedisURL = r.String("REDIS_URL", c.RedisURL)
	if v := r.String("GATEWAY_METHODS", ""); v != "" {
		if err := mergeMethods(c.Methods, v); err != nil {
			r.Fail("GATEWAY_METHODS", err)
		}
	}
	if v := r.String("GATEWAY_ACK_MODE", ""); v != "" {
		m, err := session.ParseAckMode(v)
		if err != nil {
			r.Fail("GATEWAY_ACK_MODE", err)
		}
		c.AckMode = m
	}
	c.APIFunctions = r.List("GATEWAY_API_FUNCTIONS", c.APIFunctions)
	for _, p := range r.List("GATEWAY_TRUSTED_PROXIES", nil) {
		if !strings.Contains(p, "/") {
			p += map[bool]string{true: "/32", false: "/128"}[strings.Contains(p, ".")]
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			r.Fail("GATEWAY_TRUSTED_PROXIES", err)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	c.AllowedOrigins = r.List("GATEWAY_ALLOWED_ORIGINS", c.AllowedOrigins)
	c.FrameRate = r.Float("GATEWAY_FRAME_RATE", c.FrameRate, 0)
	c.APIRate = r.Float("GATEWAY_API_RATE", c.APIRate, 0)
	c.FileRate = r.Float("GATEWAY_FILE_RATE_MIB", c.FileRate, 0)
	c.AckResend = r.Duration("GATEWAY_ACK_RESEND", c.AckResend)
	c.RouteTTL = r.Duration("GATEWAY_ROUTE_TTL", c.RouteTTL)
	c.CallTimeout = r.Duration("GATEWAY_FUNCTION_TIMEOUT", c.CallTimeout)
	c.ChatQueueWait = r.Duration("GATEWAY_CHAT_QUEUE_WAIT", c.ChatQueueWait)
	c.DrainTimeout = r.Duration("GATEWAY_DRAIN_TIMEOUT", c.DrainTimeout)
	c.PongWait = r.Duration("GATEWAY_PONG_WAIT", c.PongWait)
	c.WriteWait = r.Duration("GATEWAY_WRITE_WAIT", c.WriteWait)
	c.ReadTimeout = r.Duration("GATEWAY_READ_TIMEOUT", c.ReadTimeout)
	c.FileTimeout = r.Duration("GATEWAY_FILE_TIMEOUT", c.FileTimeout)
	c.IdleTimeout = r.Duration("GATEWAY_IDLE_TIMEOUT", c.IdleTimeout)
	for key, dst := range map[string]*int{
		"GATEWAY_FRAME_BURST":          &c.FrameBurst,
		"GATEWAY_API_BURST":            &c.APIBurst,
		"GATEWAY_MAX_SOCKETS_PER_USER": &c.MaxSocketsPerUser,
		"GATEWAY_MAX_PENDING_CONNS":    &c.MaxPendingConns,
		"GATEWAY_MAX_PENDING_PER_IP":   &c.MaxPendingPerIP,
		"GATEWAY_CHAT_BATCH_BYTES":     &c.ChatBatchBytes,
		"GATEWAY_ACK_RETRIES":          &c.AckRetries,
		"GATEWAY_READ_BUFFER":          &c.ReadBuffer,
		"GATEWAY_SEND_QUEUE":           &c.SendQueue,
		"GATEWAY_CHAT_QUEUE":           &c.ChatQueue,
		"GATEWAY_CHAT_BATCH":           &c.ChatBatch,
		"GATEWAY_CHAT_BATCH_INFLIGHT":  &c.ChatInflight,
		"GATEWAY_MAX_INFLIGHT":         &c.MaxInflight,
		"GATEWAY_MAX_ONLINE_USERS":     &c.MaxOnlineUsers,
		"GATEWAY_FILE_BURST_MIB":       &c.FileBurst,
		"GATEWAY_FILE_TRANSFERS":       &c.FileTransfers,
	} {
		*dst = r.Int(key, *dst, 0)
	}
	c.MaxFrameBytes = r.Int64("GATEWAY_MAX_FRAME_BYTES", c.MaxFrameBytes, 1)
	c.MaxPushBytes = r.Int64("GATEWAY_MAX_PUSH_BYTES", c.MaxPushBytes, 1)
	return c, r.Err()
}

// mergeMethods applies "method=function,..." to m; an empty function removes
// the method.
func mergeMethods(m map[string]string, spec string) error {
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return fmt.Errorf("%q: want method=function", pair)
		}
		if k == frame.MethodOnline || k == frame.MethodPush {
			return fmt.Errorf("%q: %s cannot be mapped to a function", pair, k)
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return nil
}
