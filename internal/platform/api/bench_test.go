package api_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// cpuTime is the CPU time this process (server and clients) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuBound is the rate the work would reach with every core of the machine
// to itself: on a shared machine the wall-clock rate mostly measures the
// neighbours' load.
func cpuBound(units float64, cpu time.Duration) float64 {
	return units / cpu.Seconds() * float64(runtime.NumCPU())
}

// BenchmarkResolveLatest measures metadata requests per second: 8 clients
// concurrently resolving @latest (a viewer token, so every request does the
// token lookup, the grant check and the resolve) against the embedded
// default (SQLite + filesystem) over loopback HTTP. Goal: >= 2000/s.
func BenchmarkResolveLatest(b *testing.B) {
	ctx := context.Background()
	srv := platformtest.Start(b)
	admin := srv.Admin(b)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(b, "p/s", "1", randomBytes(64<<10, 1))
	must3(admin.PushVersion(ctx, "p", "s", "v0", m, mem, client.TransferOptions{}))
	for i := 1; i < 50; i++ { // some history, so @latest has rows to order
		must(admin.CommitVersion(ctx, "p", "s", fmt.Sprintf("v%d", i), m))
	}
	must(admin.PutGrant(ctx, "p", "", "user:bench", client.RoleViewer))
	token := srv.UserToken(b, "bench", "bench")
	const clients, perClient = 8, 1000
	var total, cpu time.Duration
	var ops int64
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		var errs atomic.Int64
		start, cpu0 := time.Now(), cpuTime()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := srv.Client(b, token)
				for range perClient {
					if v, err := c.GetVersion(ctx, "p", "s", "@latest"); err != nil || v.Tag != "v49" {
						errs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		ops += clients * perClient
		if errs.Load() > 0 {
			b.Fatalf("%d resolves failed", errs.Load())
		}
	}
	rate := float64(ops) / total.Seconds()
	b.ReportMetric(rate, "resolves/s")
	b.ReportMetric(cpuBound(float64(ops), cpu), "resolves/s-cpu-bound")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("platform bench: resolve @latest, 8 concurrent clients, SQLite: %.0f resolves/s wall clock (goal >= 2000); %.0f/s CPU-bound on %d cores (%.0f µs CPU per resolve, server + client)\n",
		rate, cpuBound(float64(ops), cpu), runtime.NumCPU(), float64(cpu.Microseconds())/float64(ops))
}

// BenchmarkChunkDownload measures chunk download throughput over loopback
// from the embedded default, 128 MiB of incompressible chunks, counting
// bytes as stored (what crosses the wire). Goal: >= 400 MB/s. Three ways:
//   - batch: the batch endpoint, 4 requests of up to 128 chunks or 4 MiB in flight
//     (what restore and DownloadChunks use); the headline figure;
//   - get: one GET per chunk, 8 in parallel (the resumable single-chunk path);
//   - restore: statepkg.ReadComponent through the client's ChunkStore to
//     io.Discard, every chunk decompressed and verified, in stream order.
func BenchmarkChunkDownload(b *testing.B) {
	for _, avg := range []int{statepkg.DefaultAvgSize, 1 << 20} {
		b.Run(fmt.Sprintf("avg-chunk-%dKiB", avg>>10), func(b *testing.B) {
			ctx := context.Background()
			srv := platformtest.Start(b)
			admin := srv.Admin(b)
			must(admin.CreateProject(ctx, "p", ""))
			must(admin.CreateState(ctx, "p", "s", ""))
			mem := statepkg.NewMemoryStore()
			comp, _, err := statepkg.WriteComponent(ctx, mem, statepkg.Component{Name: "vol", Kind: statepkg.KindVolume, Format: "tar"},
				bytes.NewReader(randomBytes(128<<20, 2)), statepkg.WriteOptions{AvgSize: avg, MinSize: avg / 4, MaxSize: avg * 4})
			if err != nil {
				b.Fatal(err)
			}
			m := &statepkg.Manifest{SchemaVersion: 1, Components: []statepkg.Component{comp}}
			must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
			must(admin.PutGrant(ctx, "p", "", "user:bench", client.RoleApplier))
			c := srv.Client(b, srv.UserToken(b, "bench", "bench"))
			chunks := c.Chunks("p", "s")
			// Batches as the restore reader cuts them: up to 128 chunks or
			// 4 MiB.
			var batches [][]string
			var cur []string
			var curBytes int64
			for _, ch := range comp.Chunks {
				if len(cur) > 0 && (len(cur) >= 128 || curBytes+ch.Size > 4<<20) {
					batches, cur, curBytes = append(batches, cur), nil, 0
				}
				cur, curBytes = append(cur, ch.Digest), curBytes+ch.Size
			}
			batches = append(batches, cur)
			digests := make([]string, len(comp.Chunks))
			for i, ch := range comp.Chunks {
				digests[i] = ch.Digest
			}
			ways := []struct {
				name string
				run  func() (int64, error)
			}{
				{"batch", func() (int64, error) { return downloadBatched(ctx, chunks, batches, 4) }},
				{"get", func() (int64, error) { return downloadEach(ctx, chunks, digests, 8) }},
				{"restore", func() (int64, error) {
					var n countWriter
					err := statepkg.ReadComponent(ctx, chunks, comp, &n, statepkg.ReadOptions{})
					return int64(n), err
				}},
			}
			for _, way := range ways {
				b.Run(way.name, func(b *testing.B) {
					var bytesTotal int64
					var elapsed, cpu time.Duration
					for range b.N {
						start, cpu0 := time.Now(), cpuTime()
						n, err := way.run()
						elapsed += time.Since(start)
						cpu += cpuTime() - cpu0
						if err != nil {
							b.Fatal(err)
						}
						bytesTotal += n
					}
					mbps := float64(bytesTotal) / 1e6 / elapsed.Seconds()
					b.ReportMetric(mbps, "MB/s")
					b.ReportMetric(cpuBound(float64(bytesTotal)/1e6, cpu), "MB/s-cpu-bound")
					b.ReportMetric(0, "ns/op")
					what := map[string]string{
						"batch":   "batched (up to 128 chunks or 4 MiB a request, 4 in flight)",
						"get":     "one GET per chunk, 8 parallel",
						"restore": "restore read path (ReadComponent, decompressed + verified; MB/s of the stream)",
					}[way.name]
					fmt.Printf("platform bench: chunk download over loopback, %d chunks of avg %d KiB, %s: %.0f MB/s wall clock (goal >= 400); %.0f MB/s CPU-bound on %d cores\n",
						len(comp.Chunks), avg>>10, what, mbps, cpuBound(float64(bytesTotal)/1e6, cpu), runtime.NumCPU())
				})
			}
		})
	}
}

// downloadBatched fetches the batches with GetBatch, inflight requests at
// once; it returns the compressed bytes received.
func downloadBatched(ctx context.Context, chunks *client.ChunkStore, batches [][]string, inflight int) (int64, error) {
	work := make(chan []string, len(batches))
	for _, b := range batches {
		work <- b
	}
	close(work)
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for range inflight {
		wg.Go(func() {
			for batch := range work {
				if err := chunks.GetBatch(ctx, batch, func(_ int, data []byte) error {
					n.Add(int64(len(data)))
					return nil
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return n.Load(), <-errs
}

// downloadEach fetches digests with one Get each, parallel at once.
func downloadEach(ctx context.Context, chunks *client.ChunkStore, digests []string, parallel int) (int64, error) {
	work := make(chan string, len(digests))
	for _, d := range digests {
		work <- d
	}
	close(work)
	var n, failed atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for d := range work {
				data, err := chunks.Get(ctx, d)
				if err != nil {
					failed.Add(1)
					continue
				}
				n.Add(int64(len(data)))
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return n.Load(), fmt.Errorf("%d downloads failed", f)
	}
	return n.Load(), nil
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}
