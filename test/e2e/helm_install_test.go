package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// helmSeedVersion commits a version of shop/<state> made locally: a
// PostgreSQL component as a plain SQL script and an uploads volume from a
// directory.
func helmSeedVersion(ctx context.Context, t *testing.T, w *helmWorld, state, sql string) {
	t.Helper()
	cl := w.admin
	if _, err := cl.GetProject(ctx, "shop"); err != nil {
		if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.CreateState(ctx, "shop", state, ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "img", "hello.txt"), []byte("hello from "+state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := cl.Chunks("shop", state)
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: "uploads", URL: "file://" + dir}}, store, capture.Spec{State: "shop/" + state})
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "sql"},
		strings.NewReader(sql), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Components = append(m.Components, db)
	if _, err := cl.CommitVersion(ctx, "shop", state, "v1", m); err != nil {
		t.Fatal(err)
	}
}

// TestHelmPlugin_InstallSeedsInOneCommandOrFailsWithTheAgentsError runs
// `helm state install --state` through the real helm CLI: the release
// comes up seeded when helm returns; with a broken state, helm install
// --wait fails and the agent's error is printed.
func TestHelmPlugin_InstallSeedsInOneCommandOrFailsWithTheAgentsError(t *testing.T) {
	cluster.Require(t) // first: a cold cluster start must not eat the test's time budget
	forEachHelm(t, testInstallSeeds)
}

// testInstallSeeds: Helm 3 takes the plugin binary as --post-renderer,
// Helm 4 the post-renderer plugin helm state writes for it.
func testInstallSeeds(t *testing.T, h helmplugin.Helm) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := newHelmWorld(ctx, t, h)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	helmSeedVersion(ctx, t, w, "seed", `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'seeded-' || g FROM generate_series(1, 300) g;`)
	helmSeedVersion(ctx, t, w, "broken", "THIS IS NOT SQL;\n")
	chart := filepath.Join("..", "..", "examples", "quickstart", "chart")
	values := w.valuesFile(t)

	start := time.Now()
	out := w.ok(ctx, t, "state", "install", "seeded", chart, "--state", "shop/seed:v1", "-f", values, "--wait", "--timeout", "5m",
		"--agent-resources", "*=memory=384Mi")
	t.Logf("helm state install --state: %s\n%s", time.Since(start).Round(100*time.Millisecond), out)
	seeds, err := w.env.Client.BatchV1().Jobs(w.ns).List(ctx, metav1.ListOptions{LabelSelector: "unikube.dev/hook=true"})
	if err != nil || len(seeds.Items) == 0 {
		t.Fatalf("seed Jobs of the release: %v (%d)", err, len(seeds.Items))
	}
	for _, j := range seeds.Items {
		for _, c := range append(j.Spec.Template.Spec.InitContainers, j.Spec.Template.Spec.Containers...) {
			if got := c.Resources.Limits.Memory().String(); got != "384Mi" {
				t.Errorf("seed Job %s container %s memory limit %s, want the --agent-resources 384Mi", j.Name, c.Name, got)
			}
		}
	}
	// helm state <TAB> completes the namespace's release names.
	if comp := w.ok(ctx, t, "__complete", "state", "history", "se"); !strings.Contains(comp, "seeded\n") {
		t.Errorf("helm __complete state history se: %q, want the release seeded", comp)
	}
	d := shopData{w: w, release: "seeded"}
	// Seeded when helm returned: no waiting here.
	if got := exPgSum(ctx, t, d.dsn(ctx, t)); !strings.HasPrefix(got, "300:") {
		t.Errorf("items after install: %s, want 300 rows", got)
	}
	if got := d.webExec(ctx, t, "cat /uploads/img/hello.txt"); got != "hello from seed\n" {
		t.Errorf("uploads/img/hello.txt = %q", got)
	}

	outB, errB, code := w.run(ctx, t, "state", "install", "broken", chart, "--state", "shop/broken:v1", "-f", values, "--wait", "--timeout", "4m")
	if code != 1 {
		t.Fatalf("install with a broken state: exit %d, want 1\n%s\n%s", code, outB, errB)
	}
	if !strings.Contains(errB, "seeding component db of release broken failed") || !strings.Contains(errB, "syntax error") {
		t.Errorf("stderr lacks the agent's error:\n%s", errB)
	}
}
