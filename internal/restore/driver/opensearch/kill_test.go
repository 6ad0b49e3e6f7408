package opensearch_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

const killHelperEnv = "OPENSEARCH_KILL_HELPER"

// TestKillHelper is the process TestOpenSearch_KilledMidBulkLeavesTheOldIndexServed kills: it
// applies a component from a store directory, slowly (one worker, small
// bulk requests).
func TestKillHelper(t *testing.T) {
	spec := os.Getenv(killHelperEnv)
	if spec == "" {
		t.Skip("helper process of TestOpenSearch_KilledMidBulkLeavesTheOldIndexServed")
	}
	var args struct {
		Store, URL string
		Component  statepkg.Component
	}
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	store, err := statepkg.NewDirStore(args.Store)
	if err != nil {
		t.Fatal(err)
	}
	_, err = drivertest.Restore(context.Background(), opensearch.New(), args.Component, store, args.URL,
		map[string]string{opensearch.OptWorkers: "1", opensearch.OptBulkBytes: "65536"})
	t.Fatalf("the apply finished before it was killed: %v", err)
}

func TestOpenSearch_KilledMidBulkLeavesTheOldIndexServed(t *testing.T) {
	o := node(t)
	ctx := context.Background()
	const n = 20000
	call(t, o.URL, "PUT", "/shelf", `{"settings": {"number_of_replicas": 0}}`, nil)
	seedMany(t, o.URL, "shelf", n, func(int) int { return 1 })
	d := opensearch.New()
	storeDir := t.TempDir()
	store, err := statepkg.NewDirStore(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	c := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/shelf"}, store, "search")
	call(t, o.URL, "PUT", "/shelf/_doc/after-capture?refresh=true", `{"n": -1}`, nil)

	spec, _ := json.Marshal(map[string]any{"Store": storeDir, "URL": o.URL, "Component": c})
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+string(spec))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the new index holds some documents, not all.
	deadline := time.Now().Add(3 * time.Minute)
	loading := ""
	for loading == "" {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the apply made no shelf-unikube-* index with documents in 3 minutes")
		}
		// Documents are not visible while refresh is off: count what
		// the index has taken in.
		var stats struct {
			Indices map[string]struct {
				Primaries struct {
					Indexing struct {
						Total int64 `json:"index_total"`
					} `json:"indexing"`
				} `json:"primaries"`
			} `json:"indices"`
		}
		call(t, o.URL, "GET", "/shelf-unikube-*/_stats/indexing?expand_wildcards=all", nil, &stats)
		for ix, st := range stats.Indices {
			if st.Primaries.Indexing.Total > 0 && st.Primaries.Indexing.Total < n/2 {
				loading = ix
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	call(t, o.URL, "POST", "/"+loading+"/_refresh", nil, nil)
	t.Logf("killed the apply with %d of %d documents in %s", count(t, o.URL, loading, ""), n, loading)

	// The old index still serves, with the document written after the capture.
	if served := servedBy(t, o.URL, "shelf"); served != "" {
		t.Fatalf("shelf is served by %s after the kill, want the original index", served)
	}
	if got := count(t, o.URL, "shelf", ""); got != n+1 {
		t.Errorf("shelf holds %d documents after the kill, want %d", got, n+1)
	}

	// The next apply succeeds and drops the half-made index.
	if _, err := drivertest.Restore(ctx, d, c, store, o.URL, nil); err != nil {
		t.Fatal(err)
	}
	if got := count(t, o.URL, "shelf", ""); got != n {
		t.Errorf("shelf holds %d documents after the apply, want %d", got, n)
	}
	for _, ix := range indexes(t, o.URL, "shelf*") {
		if ix == loading {
			t.Errorf("the half-made %s is still there after the next apply", ix)
		}
		if !strings.HasPrefix(ix, "shelf-unikube-") {
			t.Errorf("unexpected index %s", ix)
		}
	}
}
