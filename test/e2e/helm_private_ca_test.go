package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// TestHelmPlugin_PrivateCA runs the plugin through the real helm CLI
// against the platform served over HTTPS by a CA made in the test: without
// the CA every command fails at once saying what to set; with
// UNIKUBE_CA_FILE, `helm state install` seeds the release (its
// post-renderer, a subprocess of helm, gets the file's path, and the seed
// Jobs the bundle from a ConfigMap of the release; after install, --ca-file
// is Helm's own flag for chart repositories); with --ca-file, `helm state
// apply` restores another version through agent Jobs that verify the
// platform.
func TestHelmPlugin_PrivateCA(t *testing.T) {
	env := cluster.Require(t) // first: a cold cluster start must not eat the test's time budget
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ca := testenv.NewCA(t)
	p := clusterfixture.StartPlatformTLS(t, env, exAdminToken, ca)
	w := newHelmWorldOn(ctx, t, env, env.Namespace(t), p.URL, p.Admin, exAdminToken)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	helmSeedVersion(ctx, t, w, "seed", `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'seeded-' || g FROM generate_series(1, 300) g;`)
	helmSeedVersion(ctx, t, w, "more", `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'more-' || g FROM generate_series(1, 500) g;`)

	out, errOut, code := w.run(ctx, t, "state", "list")
	if code != 1 || !strings.Contains(errOut, p.URL) || !strings.Contains(errOut, "certificate signed by unknown authority") ||
		!strings.Contains(errOut, "--ca-file") {
		t.Fatalf("helm state list without the CA: exit %d\n%s%s\nwant exit 1 naming the URL, the x509 reason and --ca-file", code, out, errOut)
	}
	chart := filepath.Join("..", "..", "examples", "quickstart", "chart")
	values := w.valuesFile(t)
	plain := w.baseEnv
	w.baseEnv = append(append([]string{}, plain...), client.EnvCAFile+"="+ca.CertFile)
	start := time.Now()
	w.ok(ctx, t, "state", "install", "seeded", chart, "--state", "shop/seed:v1", "-f", values, "--wait", "--timeout", "5m",
		"--agent-resources", "*=memory=384Mi")
	t.Logf("helm state install with UNIKUBE_CA_FILE over TLS: %s", time.Since(start).Round(100*time.Millisecond))
	cm, err := env.Client.CoreV1().ConfigMaps(w.ns).Get(ctx, "seeded-unikube-ca", metav1.GetOptions{})
	if err != nil || cm.Data["ca.crt"] != string(ca.CertPEM) || cm.Labels["app.kubernetes.io/managed-by"] != "Helm" {
		t.Fatalf("the release's CA ConfigMap: %v %+v", err, cm)
	}
	d := shopData{w: w, release: "seeded"}
	if got := exPgSum(ctx, t, d.dsn(ctx, t)); !strings.HasPrefix(got, "300:") {
		t.Errorf("items after install: %s, want 300 rows", got)
	}
	if got := d.webExec(ctx, t, "cat /uploads/img/hello.txt"); got != "hello from seed\n" {
		t.Errorf("uploads/img/hello.txt = %q", got)
	}

	w.baseEnv = plain
	w.ok(ctx, t, "state", "apply", "shop/more:v1", "seeded", "--ca-file", ca.CertFile)
	if got := exPgSum(ctx, t, d.dsn(ctx, t)); !strings.HasPrefix(got, "500:") {
		t.Errorf("items after apply: %s, want 500 rows", got)
	}
	if got := d.webExec(ctx, t, "cat /uploads/img/hello.txt"); got != "hello from more\n" {
		t.Errorf("uploads/img/hello.txt after apply = %q", got)
	}
}
