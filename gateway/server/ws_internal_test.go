package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"easychat/pkg/secret"
	"easychat/pkg/sign"
	"easychat/pkg/token"
)

func TestCredentials(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	cases := []struct {
		name, auth, query, protos string
		tok, proto                string
	}{
		{name: "header", auth: "Bearer " + jwt, tok: jwt},
		{name: "header lower-case scheme", auth: "bearer " + jwt, tok: jwt},
		{name: "query", query: "?token=" + jwt, tok: jwt},
		{name: "subprotocol with app protocol", protos: "easychat, " + jwt, tok: jwt, proto: "easychat"},
		{name: "subprotocol token first", protos: jwt + ", easychat", tok: jwt, proto: "easychat"},
		{name: "subprotocol token only", protos: jwt, tok: jwt, proto: jwt},
		{name: "header wins, app protocol answered", auth: "Bearer h.h.h", protos: "easychat", tok: "h.h.h", proto: "easychat"},
		{name: "nothing"},
		{name: "non-bearer header ignored", auth: "Basic abc"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/ws"+c.query, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if c.protos != "" {
			r.Header.Set("Sec-WebSocket-Protocol", c.protos)
		}
		tok, proto := credentials(r)
		if tok != c.tok || proto != c.proto {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", c.name, tok, proto, c.tok, c.proto)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("GATEWAY_ACK_MODE", "rigor")
	t.Setenv("GATEWAY_METHODS", "conversation.sync=, group.create=group")
	t.Setenv("GATEWAY_ROUTE_TTL", "9s")
	t.Setenv("GATEWAY_MAX_FRAME_BYTES", "2048")
	t.Setenv("SECRET_MOUNT_PATH", t.TempDir())
	t.Setenv(secret.DevSwitch, "")
	// No secrets: the gateway does not start, unless on the dev switch.
	t.Setenv("JWT_SECRET", "")
	t.Setenv("INTERNAL_KEY", "")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "jwt-secret is missing") {
		t.Fatalf("no secrets: %v", err)
	}
	t.Setenv("JWT_SECRET", "short")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("short secret: %v", err)
	}
	t.Setenv(secret.DevSwitch, "1")
	t.Setenv("JWT_SECRET", "")
	if c, err := ConfigFromEnv(); err != nil || c.JWTSecret != token.DevSecret || c.InternalKey != sign.DevKey {
		t.Fatalf("dev switch: %+v %v", c, err)
	}
	t.Setenv(secret.DevSwitch, "")
	t.Setenv("JWT_SECRET", "s3cret-jwt-0123456789")
	t.Setenv("INTERNAL_KEY", "s3cret-key-0123456789")
	t.Setenv("GATEWAY_FRAME_RATE", "7.5")
	t.Setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.AckMode != "rigor" || c.RouteTTL.Seconds() != 9 || c.MaxFrameBytes != 2048 || c.JWTSecret != "s3cret-jwt-0123456789" ||
		c.FrameRate != 7.5 || len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.168.1.1/32" {
		t.Fatalf("config %+v", c)
	}
	if _, ok := c.Methods["conversation.sync"]; ok || c.Methods["group.create"] != "group" || c.Methods["conversation.chat"] != "chat" {
		t.Fatalf("methods %v", c.Methods)
	}
	// Every bad value is named at once, not just the first.
	t.Setenv("GATEWAY_ACK_MODE", "maybe")
	t.Setenv("GATEWAY_ROUTE_TTL", "30")
	t.Setenv("GATEWAY_SEND_QUEUE", "-1")
	_, err = ConfigFromEnv()
	for _, key := range []string{"GATEWAY_ACK_MODE", "GATEWAY_ROUTE_TTL", "GATEWAY_SEND_QUEUE"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad %s not reported: %v", key, err)
		}
	}
}
