package redis_test

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/redis"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// A capture records how many keys of each type its database holds, for
// helm state diff.
func TestRedis_CaptureRecordsKeysPerType(t *testing.T) {
	src := testenv.StartRedis(t)
	ctx := context.Background()
	opts, err := goredis.ParseURL(src.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	cli := goredis.NewClient(opts)
	defer cli.Close()
	for i := range 3 {
		cli.Set(ctx, fmt.Sprint("s", i), "v", 0)
	}
	cli.HSet(ctx, "h1", "f", "v")
	cli.HSet(ctx, "h2", "f", "v")
	cli.RPush(ctx, "l", "a", "b")
	c := drivertest.Capture(t, redis.New(), driver.Source{URL: src.URL(2)}, drivertest.NewStore(t), "cache")
	s, ok, err := statepkg.ComponentSummary(&c)
	if err != nil || !ok {
		t.Fatalf("summary: %v %v", ok, err)
	}
	if got := fmt.Sprint(s.Keys); got != "[{2 hash 2} {2 list 1} {2 string 3}]" {
		t.Errorf("keys = %s", got)
	}
}
