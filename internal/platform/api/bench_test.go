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
// from the embedded default: 8 parallel GETs of 128 MiB of incompressible
// chunks, bytes as stored (what crosses the wire). Goal: >= 400 MB/s.
func BenchmarkChunkDownload(b *testing.B) {
	for _, avg := range []int{1 << 20, statepkg.DefaultAvgSize} {
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
			var bytesTotal int64
			var elapsed, cpu time.Duration
			b.ResetTimer()
			for range b.N {
				work := make(chan string, len(comp.Chunks))
				for _, ch := range comp.Chunks {
					work <- ch.Digest
				}
				close(work)
				var wg sync.WaitGroup
				var n, errs atomic.Int64
				start, cpu0 := time.Now(), cpuTime()
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for d := range work {
							data, err := chunks.Get(ctx, d)
							if err != nil {
								errs.Add(1)
								continue
							}
							n.Add(int64(len(data)))
						}
					}()
				}
				wg.Wait()
				elapsed += time.Since(start)
				cpu += cpuTime() - cpu0
				bytesTotal += n.Load()
				if errs.Load() > 0 {
					b.Fatalf("%d downloads failed", errs.Load())
				}
			}
			mbps := float64(bytesTotal) / 1e6 / elapsed.Seconds()
			b.ReportMetric(mbps, "MB/s")
			b.ReportMetric(cpuBound(float64(bytesTotal)/1e6, cpu), "MB/s-cpu-bound")
			b.ReportMetric(0, "ns/op")
			fmt.Printf("platform bench: chunk download over loopback, %d chunks of avg %d KiB, 8 parallel: %.0f MB/s wall clock (goal >= 400); %.0f MB/s CPU-bound on %d cores\n",
				len(comp.Chunks), avg>>10, mbps, cpuBound(float64(bytesTotal)/1e6, cpu), runtime.NumCPU())
		})
	}
}
