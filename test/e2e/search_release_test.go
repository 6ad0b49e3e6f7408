package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// searchNode is the release's OpenSearch node as the test reaches it
// (a port-forward to its pod).
type searchNode struct{ url string }

func (n searchNode) do(ctx context.Context, t *testing.T, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ct := "application/json"
	if strings.HasPrefix(path, "/_bulk") {
		ct = "application/x-ndjson"
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b
}

// write replaces the catalog: index products (behind alias catalog) with
// n documents of generation gen.
func (n searchNode) write(ctx context.Context, t *testing.T, gen, docs int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, n.url+"/products", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	n.do(ctx, t, http.MethodPut, "/products", `{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"name":{"type":"text"},"sku":{"type":"keyword"},"gen":{"type":"integer"}}},
		"aliases":{"catalog":{}}}`)
	var b bytes.Buffer
	for i := range docs {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"p-%d\"}}\n{\"name\":\"product %d of generation %d\",\"sku\":\"sku-%d\",\"gen\":%d}\n", i, i, gen, i, gen)
	}
	n.do(ctx, t, http.MethodPost, "/_bulk?index=products&refresh=true", b.String())
}

// sum is what a client of the catalog sees: the documents served under
// the alias and the generations they carry.
func (n searchNode) sum(ctx context.Context, t *testing.T) string {
	t.Helper()
	var got struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
		Aggregations struct {
			Gens struct {
				Buckets []struct {
					Key   int `json:"key"`
					Count int `json:"doc_count"`
				} `json:"buckets"`
			} `json:"gens"`
		} `json:"aggregations"`
	}
	body := n.do(ctx, t, http.MethodPost, "/catalog/_search?track_total_hits=true", `{"size":0,"aggs":{"gens":{"terms":{"field":"gen"}}}}`)
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("search: %v: %s", err, body)
	}
	return fmt.Sprintf("%d docs %+v", got.Hits.Total.Value, got.Aggregations.Gens.Buckets)
}

// TestHelmPlugin_CaptureApplyReleaseWithPostgresAndOpenSearch: a release
// of a PostgreSQL database and an OpenSearch node running in pods (the
// node from the Maven artifacts on Debian's Java, as `make tools` lays it
// out for the driver tests) is captured and applied through the real helm
// CLI: discovery finds the node by its image and port, the agent Jobs talk
// REST to its Service, and the apply puts back both the database and the
// index behind its alias, keeping the replaced index.
func TestHelmPlugin_CaptureApplyReleaseWithPostgresAndOpenSearch(t *testing.T) {
	env := cluster.Require(t)
	hs := helmplugin.Binaries(t)
	if len(hs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	if env.External {
		t.Skip("the opensearch image is pushed to the local cluster's registry only")
	}
	if _, _, err := cluster.PushImages(ctx, cluster.DefaultConfig(), "opensearch"); err != nil {
		t.Fatalf("push the opensearch image: %v", err)
	}
	w := newHelmWorld(ctx, t, hs[0])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	if _, err := w.admin.CreateProject(ctx, "catalog", ""); err != nil {
		t.Fatal(err)
	}
	w.ok(ctx, t, "install", "catalog", filepath.Join("testdata", "search-chart"),
		"--set", "images.postgres="+env.Image("postgres"), "--set", "images.opensearch="+env.Image("opensearch"),
		"--wait", "--timeout", "10m")
	dbSel := "app.kubernetes.io/instance=catalog,app.kubernetes.io/component=db"
	searchSel := "app.kubernetes.io/instance=catalog,app.kubernetes.io/component=search"
	dsn := func() string {
		exWaitReady(ctx, t, env, w.ns, dbSel, 1)
		return fmt.Sprintf("postgres://postgres:catalog-pw@127.0.0.1:%d/catalog?sslmode=disable", portForward(t, env, w.ns, exPod(ctx, t, env, w.ns, dbSel), 5432))
	}
	node := func() searchNode {
		exWaitReady(ctx, t, env, w.ns, searchSel, 1)
		return searchNode{url: fmt.Sprintf("http://127.0.0.1:%d", portForward(t, env, w.ns, exPod(ctx, t, env, w.ns, searchSel), 9200))}
	}
	pg, search := dsn(), node()
	writeGen := func(gen int) (string, string) {
		exPgExec(ctx, t, pg, `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text)`, `TRUNCATE items`,
			fmt.Sprintf(`INSERT INTO items SELECT g, 'gen%d-' || g FROM generate_series(1, %d) g`, gen, 500*gen))
		search.write(ctx, t, gen, 300*gen)
		return exPgSum(ctx, t, pg), search.sum(ctx, t)
	}
	pgA, searchA := writeGen(1)

	out := w.ok(ctx, t, "state", "capture", "catalog", "--to", "catalog/seed", "-o", "json")
	var v client.Version
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("capture output %q: %v", out, err)
	}
	kinds := map[string]string{}
	for _, c := range v.Components {
		kinds[c.Name] = c.Kind
	}
	if kinds["db"] != "postgres" || kinds["search"] != "opensearch" || len(kinds) != 2 {
		t.Fatalf("captured components %v, want db (postgres) and search (opensearch)", kinds)
	}

	pgB, searchB := writeGen(2)
	if pgB == pgA || searchB == searchA {
		t.Fatalf("generation 2 equals generation 1: %s %s", pgB, searchB)
	}
	var plan executor.Plan
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "apply", "catalog/seed:"+v.Tag, "catalog", "--dry-run", "-o", "json")), &plan); err != nil {
		t.Fatal(err)
	}
	for _, it := range plan.Components {
		if it.Component == "search" && (it.Action != "replace" || it.Strategy != "alias-swap" || !it.Atomic) {
			t.Errorf("plan of search: %+v, want an atomic alias-swap replace", it)
		}
	}
	w.ok(ctx, t, "state", "apply", "catalog/seed:"+v.Tag, "catalog")
	if got := exPgSum(ctx, t, dsn()); got != pgA {
		t.Errorf("database after apply = %s, want generation 1's %s", got, pgA)
	}
	if got := search.sum(ctx, t); got != searchA {
		t.Errorf("catalog after apply = %s, want generation 1's %s", got, searchA)
	}
	var aliases map[string]any
	if err := json.Unmarshal(search.do(ctx, t, http.MethodGet, "/_alias/catalog,products", ""), &aliases); err != nil {
		t.Fatal(err)
	}
	for concrete := range aliases {
		if !strings.HasPrefix(concrete, "products-unikube-") {
			t.Errorf("products is served by %s, want the restored products-unikube-* index (aliases %v)", concrete, aliases)
		}
	}
	// The replaced index is the rollback copy; a second apply changes nothing.
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "apply", "catalog/seed:"+v.Tag, "catalog", "--dry-run", "-o", "json")), &plan); err != nil {
		t.Fatal(err)
	}
	for _, it := range plan.Components {
		if it.Action != "skip" {
			t.Errorf("plan after the apply: %s %s (%s), want skip", it.Component, it.Action, it.Reason)
		}
	}
}
