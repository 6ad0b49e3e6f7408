package redis_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/redis"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// record is one key of a redis-dump stream, written as the driver frames it.
func record(key string, pttl uint64, value []byte) []byte {
	var b []byte
	b = append(b, 'K')
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, pttl)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

func hostileComponent(t *testing.T, store statepkg.ChunkStore, stream []byte) statepkg.Component {
	t.Helper()
	c, _, err := statepkg.WriteComponent(context.Background(), store, statepkg.Component{Name: "cache", Kind: statepkg.KindRedis, Format: redis.Format},
		bytes.NewReader(stream), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A record claiming a huge value is refused for what the stream holds,
// without allocating what it claims, and the target keeps its data.
func TestRedis_RecordClaimingAHugeLengthAllocatesNothingOfIt(t *testing.T) {
	rd := testenv.StartRedis(t)
	seed(t, rd.URL(2), 1)
	want := contents(t, rd.URL(2))
	store := drivertest.NewStore(t)
	claim := uint64(500 << 20)
	stream := []byte(driver.RedisDumpMagic)
	stream = append(stream, 'K')
	stream = binary.AppendUvarint(stream, 3)
	stream = append(stream, "abc"...)
	stream = binary.AppendUvarint(stream, 0)
	stream = binary.AppendUvarint(stream, claim)
	stream = append(stream, "only a few bytes"...)
	c := hostileComponent(t, store, stream)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := drivertest.Restore(context.Background(), redis.New(), c, store, rd.URL(2), nil)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("claims a %d-byte string, the stream holds 16", claim)) {
		t.Fatalf("restore: %v; want an error saying the record claims more than the stream holds", err)
	}
	t.Log(err)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("the restore allocated %d MiB for a record claiming %d MiB", got>>20, claim>>20)
	}
	same(t, "target after the hostile record", want, contents(t, rd.URL(2)))
}

// redisCRC64 is Redis's payload checksum (Jones polynomial, reflected,
// no inversion), so a test can craft a payload whose checksum holds.
func redisCRC64(b []byte) uint64 {
	const poly = 0x95ac9329ac4bc9b5
	var crc uint64
	for _, c := range b {
		crc ^= uint64(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ poly
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// A payload with a valid checksum but a damaged structure is refused by
// the server, because the restore turns on sanitize-dump-payload; the
// server's setting is put back afterwards.
func TestRedis_RestoreSanitisesPayloads(t *testing.T) {
	rd := testenv.StartRedis(t)
	ctx := context.Background()
	cli := connect(t, rd.URL(0))
	if err := cli.HSet(ctx, "h", "a", "1").Err(); err != nil {
		t.Fatal(err)
	}
	dump, err := cli.Dump(ctx, "h").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The listpack entry "a" ends with its length byte (2); a wrong one
	// passes the shallow check RESTORE always does, not the deep one.
	i := strings.Index(dump, "\x81a\x02")
	if i < 0 {
		t.Skipf("DUMP of a small hash is not a listpack on this server: %q", dump)
	}
	payload := []byte(dump)
	payload[i+2] = 0x05
	binary.LittleEndian.PutUint64(payload[len(payload)-8:], redisCRC64(payload[:len(payload)-8]))
	if v := cli.ConfigGet(ctx, "sanitize-dump-payload").Val()["sanitize-dump-payload"]; v != "no" {
		t.Fatalf("sanitize-dump-payload is %q; the test needs the default no", v)
	}
	if err := cli.Restore(ctx, "unsanitised", 0, string(payload)).Err(); err != nil {
		t.Fatalf("without sanitising the server takes the payload? %v (the test's premise)", err)
	}
	cli.Del(ctx, "unsanitised")

	seed(t, rd.URL(3), 1)
	want := contents(t, rd.URL(3))
	store := drivertest.NewStore(t)
	stream := append([]byte(driver.RedisDumpMagic), record("evil", 0, payload)...)
	stream = append(stream, 'E', 1)
	c := hostileComponent(t, store, stream)
	_, err = drivertest.Restore(ctx, redis.New(), c, store, rd.URL(3), nil)
	if err == nil || !strings.Contains(err.Error(), "evil") || !strings.Contains(strings.ToLower(err.Error()), "bad data format") {
		t.Fatalf("restore: %v; want the server's refusal of key evil", err)
	}
	t.Log(err)
	same(t, "target after the damaged payload", want, contents(t, rd.URL(3)))
	if v := cli.ConfigGet(ctx, "sanitize-dump-payload").Val()["sanitize-dump-payload"]; v != "no" {
		t.Errorf("sanitize-dump-payload left at %q, want it put back to no", v)
	}
}

// A truncated .rdb file is not captured: the redis-server that reads it
// refuses it, and the capture says so.
func TestRedis_CaptureRefusesATruncatedRDBFile(t *testing.T) {
	src := testenv.StartRedis(t)
	seed(t, src.URL(0), 1)
	ctx := context.Background()
	c := connect(t, src.URL(0))
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dir, _ := c.ConfigGet(ctx, "dir").Result()
	whole, err := os.ReadFile(filepath.Join(dir["dir"], "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.rdb")
	if err := os.WriteFile(cut, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = drivertest.CaptureErr(ctx, redis.New(), driver.Source{URL: cut}, drivertest.NewStore(t), "cache")
	if err == nil || !strings.Contains(err.Error(), "could not load") {
		t.Fatalf("capture of a truncated .rdb: %v; want redis-server's refusal", err)
	}
	t.Log(err)
}
