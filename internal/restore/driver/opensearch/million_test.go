package opensearch_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
)

// seedParallel loads n small documents into name with two bulk writers.
func seedParallel(t *testing.T, base, name string, n int) {
	t.Helper()
	const batch = 10000
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := w * batch; from < n; from += 2 * batch {
				var b strings.Builder
				for i := from; i < min(from+batch, n); i++ {
					fmt.Fprintf(&b, `{"index":{"_index":%q,"_id":"ev-%07d"}}`+"\n", name, i)
					fmt.Fprintf(&b, `{"n":%d,"kind":"k%d","at":"2024-01-%02dT00:00:00Z"}`+"\n", i, i%7, 1+i%28)
				}
				call(t, base, "POST", "/_bulk", b.String(), nil)
			}
		}()
	}
	wg.Wait()
	call(t, base, "POST", "/"+name+"/_refresh", nil, nil)
}

// TestOpenSearch_OneMillionSmallDocuments captures an index of a million
// small documents and applies it over a changed copy: every document comes
// back, served under the old name. It takes minutes on a loaded machine,
// so it runs only with UNIKUBE_OPENSEARCH_MILLION=1 (make bench sets it).
func TestOpenSearch_OneMillionSmallDocuments(t *testing.T) {
	if os.Getenv("UNIKUBE_OPENSEARCH_MILLION") != "1" {
		t.Skip("set UNIKUBE_OPENSEARCH_MILLION=1 (make bench does) to load a million documents")
	}
	o := node(t)
	ctx := context.Background()
	// The package's node is shared: free its heap for what runs next.
	t.Cleanup(func() { call(t, o.URL, "DELETE", "/events*", nil, nil) })
	const n = 1_000_000
	call(t, o.URL, "PUT", "/events", `{"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
		"mappings": {"properties": {"n": {"type": "long"}, "kind": {"type": "keyword"}, "at": {"type": "date"}}}}`, nil)
	start := time.Now()
	seedParallel(t, o.URL, "events", n)
	call(t, o.URL, "PUT", "/events/_settings", `{"index": {"refresh_interval": null}}`, nil)
	t.Logf("seeded %d documents in %s", n, time.Since(start).Round(time.Second))

	d := opensearch.New()
	store := drivertest.NewStore(t)
	start = time.Now()
	c := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/events"}, store, "search")
	t.Logf("captured %s documents (%d MB stream, %d chunks) in %s", c.Meta["documents"], c.Size>>20, len(c.Chunks), time.Since(start).Round(time.Second))
	if c.Meta["documents"] != "1000000" {
		t.Fatalf("captured %s documents, want 1000000", c.Meta["documents"])
	}
	// The app starts over with a thousand other documents.
	call(t, o.URL, "DELETE", "/events", nil, nil)
	call(t, o.URL, "PUT", "/events", `{"settings": {"number_of_shards": 1, "number_of_replicas": 0}}`, nil)
	seedMany(t, o.URL, "events", 1000, func(int) int { return 2 })

	start = time.Now()
	res, err := drivertest.Restore(ctx, d, c, store, o.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("applied %d documents in %s (%.0f documents/s)", res.Rows, took.Round(time.Second), float64(res.Rows)/took.Seconds())
	if got := count(t, o.URL, "events", ""); got != n {
		t.Errorf("events serves %d documents, want %d", got, n)
	}
	if got := count(t, o.URL, "events", `{"query": {"range": {"n": {"gte": 500000}}}}`); got != n/2 {
		t.Errorf("%d documents of the second half are served, want %d", got, n/2)
	}
	if got := count(t, o.URL, "events", `{"query": {"ids": {"values": ["ev-0000000", "ev-0999999", "ev-0543210"]}}}`); got != 3 {
		t.Errorf("%d of 3 sampled ids found", got)
	}
}
