package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"easychat/devstack/embedded"
	"easychat/pkg/route"
)

// testRedis returns a client for REDIS_URL when set (CI's real-Redis lane),
// else for an embedded server.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		r, err := embedded.StartRedis("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		url = r.URL()
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRouteRegistryLookupPresenceAndExpiry(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	pfx := fmt.Sprintf("t%d-", time.Now().UnixNano())
	u := func(s string) string { return pfx + s }
	gw1, gw2 := pfx+"gw1", pfx+"gw2"

	reg := route.NewRedis(rdb, 2*time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.Heartbeat(ctx, gw1, "http://gw1"))
	must(reg.Heartbeat(ctx, gw2, "http://gw2"))
	must(reg.Bind(ctx, gw1, u("alice"), u("bob")))
	must(reg.Bind(ctx, gw2, u("bob")))

	got, err := reg.Lookup(ctx, []string{u("alice"), u("bob"), u("carol")})
	must(err)
	if fmt.Sprint(got["http://gw1"]) != fmt.Sprint([]string{u("alice"), u("bob")}) || fmt.Sprint(got["http://gw2"]) != fmt.Sprint([]string{u("bob")}) || len(got) != 2 {
		t.Fatalf("lookup = %v", got)
	}

	must(reg.Unbind(ctx, gw1, u("alice")))
	on, err := reg.Online(ctx, []string{u("alice"), u("bob")})
	must(err)
	if on[u("alice")] || !on[u("bob")] {
		t.Fatalf("online after unbind = %v", on)
	}

	// A gateway that leaves (or dies and stops heartbeating) no longer routes.
	must(reg.Leave(ctx, gw2))
	got, err = reg.Lookup(ctx, []string{u("bob")})
	must(err)
	if len(got) != 1 || len(got["http://gw1"]) != 1 {
		t.Fatalf("lookup after gw2 left = %v", got)
	}

	// Without refresh, routes and instances expire by themselves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		on, err = reg.Online(ctx, []string{u("bob")})
		must(err)
		if !on[u("bob")] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob still online after his routes' TTL passed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
