package testenv_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartRedis_ServesReadsAndWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := testenv.StartRedis(t)
	t.Logf("redis ready on port %d in %s", r.Port, time.Since(start).Round(time.Millisecond))

	opts, err := redis.ParseURL(r.URL(3))
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "seed", "v1", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	got, err := c.Get(ctx, "seed").Result()
	if err != nil || got != "v1" {
		t.Fatalf("get = %q, %v; want v1", got, err)
	}
	// The key lives in DB 3 only; SWAPDB (used by restores) works across 16 DBs.
	if err := c.Do(ctx, "SWAPDB", 3, 15).Err(); err != nil {
		t.Fatalf("swapdb: %v", err)
	}
	if n, err := c.Exists(ctx, "seed").Result(); err != nil || n != 0 {
		t.Fatalf("after SWAPDB 3 15, DB 3 still has the key (n=%d, err=%v)", n, err)
	}
}

func TestRedis_RequiresPassword(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DisableIdentity: true})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatalf("PING without a password succeeded: requirepass is not set")
	}
}
