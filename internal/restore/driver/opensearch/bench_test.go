package opensearch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// benchWords make the documents' text: ordinary words in random order, so
// the data compresses like text does, not like one repeated line.
var benchWords = strings.Fields(`the of and to in is was for on that with as by at from his her an which or
be are this had not but were have they their one all there been has when who more would will about into
than its only other new some could time these two may then first any like now such our over even most
after also made many before must through back years where much your way well down should because each
just those people how too little state good very make world still own see men work long get here between
both life being under never day same another know while last might us great old year off come since
against go came right used take three catalogue search index shard replica alias mapping document`)

const benchIndex = `{"settings": {"number_of_shards": 1, "number_of_replicas": 0},
	"mappings": {"properties": {"n": {"type": "long"}, "price": {"type": "double"}, "tags": {"type": "keyword"}, "title": {"type": "text"}, "body": {"type": "text"}}}}`

// seedBench loads n documents of about 1 KiB into name with two writers.
func seedBench(b *testing.B, base, name string, n int) {
	b.Helper()
	const batch = 4000
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var sb strings.Builder
			for from := w * batch; from < n; from += 2 * batch {
				sb.Reset()
				for i := from; i < min(from+batch, n); i++ {
					fmt.Fprintf(&sb, `{"index":{"_index":%q,"_id":"d-%08d"}}`+"\n", name, i)
					fmt.Fprintf(&sb, `{"n":%d,"price":%d.%02d,"tags":["t%d","t%d"],"title":"`, i, r.IntN(1000), r.IntN(100), r.IntN(50), r.IntN(50))
					for range 6 {
						sb.WriteString(benchWords[r.IntN(len(benchWords))] + " ")
					}
					sb.WriteString(`","body":"`)
					for l := 0; l < 900; {
						w := benchWords[r.IntN(len(benchWords))]
						sb.WriteString(w + " ")
						l += len(w) + 1
					}
					sb.WriteString("\"}\n")
				}
				call(b, base, "POST", "/_bulk", sb.String(), nil)
			}
		}()
	}
	wg.Wait()
	call(b, base, "POST", "/"+name+"/_refresh", nil, nil)
}

// peakRSS returns the process's peak resident set (VmHWM) in MiB;
// resetPeakRSS starts a new peak (Linux: clear_refs 5).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o644)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// BenchmarkOpenSearch_ApplyVsSnapshotRestoreVsElasticdump loads an index
// of UNIKUBE_BENCH_SEARCH_MB MiB of ~1 KiB documents (default 256),
// captures it, and times three ways of putting it into the node again:
// this driver's apply (new index, bulk load, alias swap), the node's own
// restore of a snapshot of the index from an fs repository (the physical
// near-limit), and elasticdump loading the same documents from its file
// (what users reach for; scripts/install-elasticdump.sh, which make bench
// runs). It reports apply ÷ snapshot restore (goal ≤ 1.5), apply ÷
// elasticdump (goal ≤ 0.5) and the apply's peak RSS (goal ≤ 256 MiB).
func BenchmarkOpenSearch_ApplyVsSnapshotRestoreVsElasticdump(b *testing.B) {
	mb := 256
	if v := os.Getenv("UNIKUBE_BENCH_SEARCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("UNIKUBE_BENCH_SEARCH_MB=%q: want a positive number of MiB", v)
		}
		mb = n
	}
	o := node(b)
	ctx := context.Background()
	n := mb * 1024
	call(b, o.URL, "DELETE", "/bench*,snap-bench*,ed-bench*?ignore_unavailable=true", nil, nil)
	call(b, o.URL, "PUT", "/bench", benchIndex, nil)
	call(b, o.URL, "PUT", "/bench/_settings", `{"index": {"refresh_interval": "-1"}}`, nil)
	start := time.Now()
	seedBench(b, o.URL, "bench", n)
	call(b, o.URL, "PUT", "/bench/_settings", `{"index": {"refresh_interval": null}}`, nil)
	b.Logf("seeded %d documents (~%d MiB of JSON) in %s; load %s", n, mb, time.Since(start).Round(time.Second), loadavg())

	d := opensearch.New()
	store := drivertest.NewStore(b)
	start = time.Now()
	c := drivertest.Capture(b, d, driver.Source{URL: o.URL + "/bench"}, store, "search")
	capture := time.Since(start)
	b.Logf("captured %s documents, %d MiB stream, in %s", c.Meta["documents"], c.Size>>20, capture.Round(time.Millisecond))

	b.ResetTimer()
	resetPeakRSS()
	start = time.Now()
	res, err := drivertest.Restore(ctx, d, c, store, o.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	apply := time.Since(start)
	rss := peakRSS()
	b.StopTimer()
	if got := count(b, o.URL, "bench", ""); got != int64(n) || res.Rows != int64(n) {
		b.Fatalf("apply restored %d, bench serves %d documents, want %d", res.Rows, got, n)
	}
	b.Logf("apply: %s (%.0f documents/s, %.1f MiB/s), peak RSS %.0f MiB; load %s", apply.Round(time.Millisecond),
		float64(n)/apply.Seconds(), float64(c.Size)/(1<<20)/apply.Seconds(), rss, loadavg())

	// The node's own snapshot and restore of the same index.
	call(b, o.URL, "PUT", "/_snapshot/bench", fmt.Sprintf(`{"type": "fs", "settings": {"location": %q}}`, filepath.Join(o.Repo, "bench")), nil)
	snapName := fmt.Sprintf("s-%d", time.Now().UnixNano())
	call(b, o.URL, "PUT", "/_snapshot/bench/"+snapName+"?wait_for_completion=true", `{"indices": "bench", "include_global_state": false}`, nil)
	start = time.Now()
	call(b, o.URL, "POST", "/_snapshot/bench/"+snapName+"/_restore?wait_for_completion=true",
		`{"indices": "bench*", "rename_pattern": "(.+)", "rename_replacement": "snap-$1", "include_aliases": false}`, nil)
	snap := time.Since(start)
	b.Logf("snapshot restore: %s; load %s", snap.Round(time.Millisecond), loadavg())
	b.ReportMetric(apply.Seconds(), "apply-s")
	b.ReportMetric(snap.Seconds(), "snapshot-restore-s")
	b.ReportMetric(apply.Seconds()/snap.Seconds(), "apply/snapshot")
	b.ReportMetric(rss, "apply-peak-rss-MiB")

	// elasticdump: its file of the index first (not timed), then the timed load.
	ed := filepath.Join(testenv.ToolsDir(), "elasticdump", "node_modules", ".bin", "elasticdump")
	if _, err := os.Stat(ed); err != nil {
		b.Logf("elasticdump not installed (%v): run scripts/install-elasticdump.sh (make bench does); no apply/elasticdump figure", err)
		return
	}
	file := filepath.Join(b.TempDir(), "bench.json")
	run := func(args ...string) {
		cmd := exec.CommandContext(ctx, ed, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("elasticdump %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("--input="+o.URL+"/bench", "--output="+file, "--type=data", "--limit=5000", "--quiet")
	// The same index definition as the captured one (elasticdump's own
	// settings copy would bring the source's server-kept settings along).
	call(b, o.URL, "PUT", "/ed-bench", benchIndex, nil)
	start = time.Now()
	run("--input="+file, "--output="+o.URL+"/ed-bench", "--type=data", "--limit=5000", "--quiet")
	call(b, o.URL, "POST", "/ed-bench/_refresh", nil, nil)
	edTook := time.Since(start)
	if got := count(b, o.URL, "ed-bench", ""); got != int64(n) {
		b.Errorf("elasticdump loaded %d documents, want %d", got, n)
	}
	b.Logf("elasticdump load: %s; load %s", edTook.Round(time.Millisecond), loadavg())
	b.ReportMetric(edTook.Seconds(), "elasticdump-s")
	b.ReportMetric(apply.Seconds()/edTook.Seconds(), "apply/elasticdump")
}
