package statepkg

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// tarLikeStream builds a deterministic tar archive of about size bytes:
// real tar headers around file bodies that are half incompressible (like
// images or compressed blobs) and half text (like logs, SQL or JSON), so that
// both chunking and compression see realistic input.
func tarLikeStream(tb testing.TB, seed uint64, size int) []byte {
	tb.Helper()
	data, _ := tarLikeStreamMarked(tb, seed, size)
	return data
}

// entryMark is where a tar entry starts in a stream, and its name.
type entryMark struct {
	off  int64
	name string
}

// cutsFor replays marks into a fresh Cuts for one WriteComponent.
func cutsFor(marks []entryMark) *Cuts {
	c := NewCuts()
	for _, m := range marks {
		c.MarkCut(m.off, m.name)
	}
	return c
}

// tarLikeStreamMarked is tarLikeStream plus where each entry starts.
func tarLikeStreamMarked(tb testing.TB, seed uint64, size int) ([]byte, []entryMark) {
	tb.Helper()
	var marks []entryMark
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := []string{"insert", "into", "orders", "values", "customer", "select", "from", "where", "id", "null",
		"true", "false", "price", "2026-01-01", "status", "shipped", "pending", "{\"sku\":", "\"qty\":", "},", "\n"}
	var buf bytes.Buffer
	buf.Grow(size + 1<<20)
	tw := tar.NewWriter(&buf)
	body := make([]byte, 0, 4<<20)
	for i := 0; buf.Len() < size; i++ {
		// File sizes from a few hundred bytes to a few MiB, skewed small.
		n := 256 << rng.IntN(14)
		n += rng.IntN(n)
		body = body[:0]
		if i%2 == 0 {
			body = body[:n]
			for j := 0; j+8 <= n; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					body[j+k] = byte(v >> (8 * k))
				}
			}
		} else {
			for len(body) < n {
				body = append(body, words[rng.IntN(len(words))]...)
				body = append(body, ' ')
			}
			body = body[:n]
		}
		hdr := &tar.Header{
			Name: fmt.Sprintf("data/dir%03d/file%06d.bin", i%97, i), Mode: 0o644, Size: int64(n),
			ModTime: time.Unix(1_700_000_000+int64(i), 0), Uid: 1000, Gid: 1000, Typeflag: tar.TypeReg,
		}
		if err := tw.Flush(); err != nil {
			tb.Fatal(err)
		}
		marks = append(marks, entryMark{int64(buf.Len()), hdr.Name})
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()[:size], marks // a cut tar is still a fine byte stream here
}

const benchSize = 256 << 20

// perSecond returns n bytes over d in MB/s (0 when d was not measured).
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

func BenchmarkWrite(b *testing.B) {
	data := tarLikeStream(b, 1, benchSize)
	ctx := b.Context()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		store := NewMemoryStore()
		start, cpu0 := time.Now(), cpuTime()
		_, stats, err := WriteComponent(ctx, store, Component{Name: "bench", Kind: KindVolume, Format: "tar"}, bytes.NewReader(data), WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(start), cpuTime()-cpu0
		b.ReportMetric(float64(stats.Chunks), "chunks")
		b.ReportMetric(float64(stats.StoredBytes)/float64(stats.Bytes), "stored_ratio")
		b.ReportMetric(perSecond(len(data), cpu), "MB/cpu-s")
		fmt.Printf("BenchmarkWrite: chunk+compress+hash %.0f MB/s wall, %.0f MB per CPU-second (%d chunks, mean %d KiB, stored/raw %.3f)\n",
			perSecond(len(data), wall), perSecond(len(data), cpu), stats.Chunks, stats.Bytes/int64(stats.Chunks)>>10,
			float64(stats.StoredBytes)/float64(stats.Bytes))
	}
}

func BenchmarkRead(b *testing.B) {
	data := tarLikeStream(b, 2, benchSize)
	ctx := b.Context()
	store := NewMemoryStore()
	c, _, err := WriteComponent(ctx, store, Component{Name: "bench", Kind: KindVolume, Format: "tar"}, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(c.Size)
	b.ResetTimer()
	for range b.N {
		start, cpu0 := time.Now(), cpuTime()
		if err := ReadComponent(ctx, store, c, io.Discard, ReadOptions{}); err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(start), cpuTime()-cpu0
		b.ReportMetric(perSecond(int(c.Size), cpu), "MB/cpu-s")
		fmt.Printf("BenchmarkRead: read+verify+decompress %.0f MB/s wall, %.0f MB per CPU-second\n",
			perSecond(int(c.Size), wall), perSecond(int(c.Size), cpu))
	}
}

// BenchmarkDedup stores a 256 MiB tar-like stream, overwrites 1% of it in 20
// scattered places, stores it again and reports the new bytes stored over
// 256 MiB (the goal is at most 0.03).
//
// With UNIKUBE_BENCH_DEDUP_MARKED=1 the writes get the entries' starts as
// boundaries (as volume captures do).
func BenchmarkDedup(b *testing.B) {
	data, marks := tarLikeStreamMarked(b, 3, benchSize)
	ctx := b.Context()
	spec := Component{Name: "bench", Kind: KindVolume, Format: "tar"}
	opts := func() WriteOptions {
		if os.Getenv("UNIKUBE_BENCH_DEDUP_MARKED") == "1" {
			return WriteOptions{Cuts: cutsFor(marks)}
		}
		return WriteOptions{}
	}
	for range b.N {
		store := NewMemoryStore()
		if _, _, err := WriteComponent(ctx, store, spec, bytes.NewReader(data), opts()); err != nil {
			b.Fatal(err)
		}
		changed := bytes.Clone(data)
		rng := rand.New(rand.NewPCG(4, 5))
		const places = 20
		per := benchSize / 100 / places
		segment := benchSize / places
		for i := range places {
			at := i*segment + rng.IntN(segment-per)
			for j := range per {
				changed[at+j] = byte(rng.Uint32())
			}
		}
		_, stats, err := WriteComponent(ctx, store, spec, bytes.NewReader(changed), opts())
		if err != nil {
			b.Fatal(err)
		}
		ratio := float64(stats.NewStoredBytes) / benchSize
		rawRatio := float64(stats.NewBytes) / benchSize
		b.ReportMetric(ratio, "new_bytes_ratio")
		b.ReportMetric(rawRatio, "new_raw_ratio")
		fmt.Printf("BenchmarkDedup: new_bytes_ratio %.4f (new stored bytes / 256 MiB, goal <= 0.03); uncompressed new chunks / 256 MiB %.4f; %d of %d chunks new\n",
			ratio, rawRatio, stats.NewChunks, stats.Chunks)
	}
}
