package redis_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/redis"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func connect(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func seed(t testing.TB, url string, version int) {
	t.Helper()
	ctx := context.Background()
	c := connect(t, url)
	pipe := c.Pipeline()
	for i := range 20000 {
		pipe.Set(ctx, fmt.Sprintf("str:%d", i), fmt.Sprintf("v%d-%d-%s", version, i, strings.Repeat("x", i%200)), 0)
	}
	pipe.HSet(ctx, "hash", "a", "1", "b", fmt.Sprint(version))
	pipe.RPush(ctx, "list", "x", "y", "z")
	pipe.SAdd(ctx, "set", "m1", "m2")
	pipe.ZAdd(ctx, "zset", goredis.Z{Score: 1.5, Member: "one"}, goredis.Z{Score: 2, Member: "two"})
	pipe.XAdd(ctx, &goredis.XAddArgs{Stream: "stream", Values: map[string]any{"f": "v"}})
	pipe.Set(ctx, "ttl", "expiring", time.Hour)
	pipe.Set(ctx, "bin\x00key\xff", "\x00\x01\x02", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// contents describes every key: its DUMP payload and TTL rounded to minutes.
func contents(t testing.TB, url string) map[string]string {
	t.Helper()
	ctx := context.Background()
	c := connect(t, url)
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if iter.Val() != redis.MarkerKey && iter.Val() != redis.PreviousKey {
			keys = append(keys, iter.Val())
		}
	}
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		var v string
		if c.Type(ctx, k).Val() == "set" {
			// A set's DUMP encoding depends on insertion order; compare members.
			m := c.SMembers(ctx, k).Val()
			sort.Strings(m)
			v = fmt.Sprintf("set%q", m)
		} else {
			d, err := c.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			v = fmt.Sprintf("%x", d)
		}
		ttl := c.PTTL(ctx, k).Val()
		out[k] = fmt.Sprintf("%s ttl=%v", v, ttl.Round(10*time.Minute)) // slow runs (-race) lose seconds
	}
	return out
}

func same(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d keys, want %d", what, len(got), len(want))
	}
	bad := 0
	for k, v := range want {
		if got[k] != v && bad < 5 {
			bad++
			t.Errorf("%s: key %q: got %.60s, want %.60s", what, k, got[k], v)
		}
	}
}

func TestRedis_CaptureRestoreSwapIdempotencyAndFailures(t *testing.T) {
	src, dst := testenv.StartRedis(t), testenv.StartRedis(t)
	seed(t, src.URL(0), 1)
	seed(t, src.URL(1), 2)
	want1, want2 := contents(t, src.URL(0)), contents(t, src.URL(1))
	store := drivertest.NewStore(t)
	d := redis.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL(0)}, store, "cache")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL(1)}, store, "cache")
	ctx := context.Background()
	target := dst.URL(3)

	if pl, err := d.Plan(ctx, c1, driver.Target{URL: target}); err != nil || pl.Action != driver.ActionCreate {
		t.Fatalf("plan %+v %v", pl, err)
	}
	res, err := drivertest.Restore(ctx, d, c1, store, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != int64(len(want1)) {
		t.Errorf("restored %d keys, want %d", res.Rows, len(want1))
	}
	same(t, "first apply", want1, contents(t, target))

	cs := &drivertest.CountingStore{ChunkStore: store}
	if res, err := drivertest.Restore(ctx, d, c1, cs, target, nil); err != nil || res.Action != driver.ActionSkip || cs.Gets.Load() != 0 {
		t.Errorf("re-apply: %+v, %v, %d chunks", res, err, cs.Gets.Load())
	}

	if _, err := drivertest.Restore(ctx, d, c2, store, target, nil); err != nil {
		t.Fatal(err)
	}
	same(t, "second apply", want2, contents(t, target))
	same(t, "previous data in the spare db", want1, contents(t, dst.URL(15)))
	m, err := redis.ReadMarker(ctx, target)
	if err != nil || m == nil || m.ComponentDigest != c2.Digest {
		t.Errorf("marker %+v %v", m, err)
	}

	failures := map[string]func() error{
		"corrupt chunk": func() error {
			_, err := drivertest.Restore(ctx, d, c1, drivertest.CorruptStore{ChunkStore: store, Digest: c1.Chunks[len(c1.Chunks)-1].Digest}, target, nil)
			return err
		},
		"cancelled": func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := drivertest.Restore(cctx, d, c1, &drivertest.CancelStore{ChunkStore: store, After: 2, Cancel: cancel}, target, nil)
			return err
		},
	}
	for name, run := range failures {
		t.Run("failure leaves previous data: "+name, func(t *testing.T) {
			err := run()
			if err == nil || !strings.HasPrefix(err.Error(), "restore cache: restore: ") {
				t.Fatalf("err = %v; want a restore-phase error naming the component", err)
			}
			same(t, "target after failure", want2, contents(t, target))
			if n := connect(t, dst.URL(15)).DBSize(ctx).Val(); n != 0 {
				t.Errorf("spare db holds %d keys after a failed apply", n)
			}
		})
	}

	t.Run("refuses a spare db with foreign data", func(t *testing.T) {
		connect(t, dst.URL(7)).Set(ctx, "theirs", "1", 0)
		_, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{redis.OptSpareDB: "7"})
		if err == nil || !strings.Contains(err.Error(), "did not write") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRedis_CapturesAnRDBFile(t *testing.T) {
	src, dst := testenv.StartRedis(t), testenv.StartRedis(t)
	seed(t, src.URL(0), 1)
	want := contents(t, src.URL(0))
	ctx := context.Background()
	c := connect(t, src.URL(0))
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dir, _ := c.ConfigGet(ctx, "dir").Result()
	rdb := filepath.Join(dir["dir"], "dump.rdb")
	if k, err := driver.KindOf(rdb); err != nil || k != statepkg.KindRedis {
		t.Fatalf("KindOf(%s) = %s, %v", rdb, k, err)
	}
	store := drivertest.NewStore(t)
	comp := drivertest.Capture(t, redis.New(), driver.Source{URL: rdb}, store, "cache")
	if _, err := drivertest.Restore(ctx, redis.New(), comp, store, dst.URL(0), nil); err != nil {
		t.Fatal(err)
	}
	same(t, "restored from rdb", want, contents(t, dst.URL(0)))
}

// An app's own data (no marker) swapped out by the first apply must not
// make the spare look foreign to the second apply.
func TestRedis_SecondApplyOverAnAppsOwnData(t *testing.T) {
	src, dst := testenv.StartRedis(t), testenv.StartRedis(t)
	seed(t, src.URL(0), 1)
	seed(t, src.URL(1), 2)
	store := drivertest.NewStore(t)
	d := redis.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL(0)}, store, "cache")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL(1)}, store, "cache")
	ctx := context.Background()
	target := dst.URL(0)
	seed(t, target, 3) // the app's own data, written before any apply
	appData := contents(t, target)

	if _, err := drivertest.Restore(ctx, d, c1, store, target, nil); err != nil {
		t.Fatal(err)
	}
	same(t, "app data kept in the spare", appData, contents(t, dst.URL(15)))
	if _, err := drivertest.Restore(ctx, d, c2, store, target, nil); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	same(t, "second apply", contents(t, src.URL(1)), contents(t, target))
}
