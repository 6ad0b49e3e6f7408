package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestClone_VersionIntoAnotherNamespaceWithSubstitution captures a running
// app (its database and its ConfigMap/Secret, a `kubernetes` component)
// from one namespace, applies that version into a second namespace as a
// ServiceAccount bound only to the documented Role, with a rule rewriting
// the database host, and checks both namespaces then work on their own:
// each app's configured host reaches its own database, which holds the
// captured rows, and a write in the clone leaves the original untouched.
func TestClone_VersionIntoAnotherNamespaceWithSubstitution(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	src, dst := env.Namespace(t), env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics %s:\n%s\ndiagnostics %s:\n%s", src, podDiagnostics(context.Background(), env, src),
				dst, podDiagnostics(context.Background(), env, dst))
		}
	})
	if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "shop", "staging", ""); err != nil {
		t.Fatal(err)
	}
	ci, err := cl.CreateToken(ctx, client.TokenRequest{Name: "ci-capture", User: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutGrant(ctx, "shop", "staging", "user:ci", "maintainer"); err != nil {
		t.Fatal(err)
	}
	srcApp := exCreateApp(ctx, t, env, src)
	dstApp := exCreateApp(ctx, t, env, dst)

	// The source app: rows in its database, and its configuration naming
	// its own namespace's database.
	host := func(ns string) string { return "db." + ns + ".svc.cluster.local" }
	exPgExec(ctx, t, cloneDSN(ctx, t, env, srcApp), `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'staging-' || g FROM generate_series(1, 3000) g`)
	cfgLabels := map[string]string{"app.kubernetes.io/part-of": "shop-config"}
	if _, err := env.Client.CoreV1().ConfigMaps(src).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-config", Labels: cfgLabels},
		Data: map[string]string{"DATABASE_HOST": host(src), "DATABASE_NAME": "app",
			".env": "DATABASE_HOST=" + host(src) + "\nFEATURE_X=on\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(src).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-settings", Labels: cfgLabels},
		StringData: map[string]string{"DATABASE_URL": "postgres://postgres@" + host(src) + ":5432/app", "API_KEY": "k-123"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := exPgSum(ctx, t, cloneDSN(ctx, t, env, srcApp))

	start := time.Now()
	v, err := executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: src, Platform: cl, PlatformURL: platformURL, UploadToken: ci.Secret,
		Project: "shop", State: "staging", AgentImage: env.Image("unikube-agent"),
		Mappings: []discovery.Mapping{
			{Component: "db", Kind: statepkg.KindPostgres, Workload: "StatefulSet/db"},
			{Component: "config", Kind: statepkg.KindKubernetes, Selector: "app.kubernetes.io/part-of=shop-config"},
		},
	})
	if err != nil {
		t.Fatalf("capture %s: %v", src, err)
	}
	t.Logf("captured %s in %s", v.Tag, time.Since(start).Round(time.Millisecond))
	m, _, err := cl.GetManifest(ctx, "shop", "staging", v.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var cfg statepkg.Component
	for _, c := range m.Components {
		if c.Name == "config" {
			cfg = c
		}
	}
	if cfg.Kind != statepkg.KindKubernetes || cfg.Meta["objects"] != "ConfigMap/shop-config,Secret/shop-settings" {
		t.Fatalf("config component %+v, want the ConfigMap and the Secret", cfg)
	}

	deployer := exBoundClient(ctx, t, env, dst, "deployer", nil)
	start = time.Now()
	rec, err := executor.Apply(ctx, executor.Options{
		Client: deployer, Namespace: dst, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "shop", State: "staging", Digest: v.Digest}, Release: "shop",
		Mappings: []discovery.Mapping{
			{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
			{Component: "config", Quiesce: []string{"Deployment/web"}},
		},
		Substitutions: []substitution.Rule{{Old: host(src), New: host(dst)}},
		Quiesce:       true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
	})
	if err != nil {
		t.Fatalf("clone into %s: %v", dst, err)
	}
	t.Logf("cloned into %s in %s: %+v", dst, time.Since(start).Round(time.Millisecond), rec.Components)
	if rec.Status != records.StatusApplied || len(rec.Components) != 2 {
		t.Errorf("record %+v, want applied with 2 components", rec)
	}

	// Configuration: rewritten in the clone, untouched in the source.
	for _, tc := range []struct {
		ns, host string
	}{{src, host(src)}, {dst, host(dst)}} {
		cm, err := env.Client.CoreV1().ConfigMaps(tc.ns).Get(ctx, "shop-config", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.ns, err)
		}
		if cm.Data["DATABASE_HOST"] != tc.host || cm.Data[".env"] != "DATABASE_HOST="+tc.host+"\nFEATURE_X=on\n" || cm.Data["DATABASE_NAME"] != "app" {
			t.Errorf("%s: shop-config %v, want DATABASE_HOST %s", tc.ns, cm.Data, tc.host)
		}
		s, err := env.Client.CoreV1().Secrets(tc.ns).Get(ctx, "shop-settings", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.ns, err)
		}
		if string(s.Data["DATABASE_URL"]) != "postgres://postgres@"+tc.host+":5432/app" || string(s.Data["API_KEY"]) != "k-123" {
			t.Errorf("%s: shop-settings DATABASE_URL %q API_KEY %q", tc.ns, s.Data["DATABASE_URL"], s.Data["API_KEY"])
		}
	}

	// Data: the clone holds the captured rows.
	if got := exPgSum(ctx, t, cloneDSN(ctx, t, env, dstApp)); got != want {
		t.Errorf("clone database %s, want %s", got, want)
	}
	// Both work on their own: through the host its configuration names,
	// each app reaches its own database; a write in the clone stays there.
	sql := func(app exApp, q string) string {
		t.Helper()
		cm, err := env.Client.CoreV1().ConfigMaps(app.ns).Get(ctx, "shop-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := exPod(ctx, t, env, app.ns, "app=db")
		out, errOut, err := execIn(ctx, env, app.ns, pod, "postgres", nil, "sh", "-c",
			`PGPASSWORD="$POSTGRES_PASSWORD" psql -h "$1" -U postgres -d "$2" -tAc "$3"`, "sh", cm.Data["DATABASE_HOST"], cm.Data["DATABASE_NAME"], q)
		if err != nil {
			t.Fatalf("%s: psql via %s: %v %s", app.ns, cm.Data["DATABASE_HOST"], err, errOut)
		}
		return strings.TrimSpace(out)
	}
	sql(dstApp, `INSERT INTO items VALUES (100001, 'only-in-the-clone')`)
	if got := sql(dstApp, `SELECT count(*) FROM items`); got != "3001" {
		t.Errorf("clone rows after a write: %s, want 3001", got)
	}
	if got := sql(srcApp, `SELECT count(*) FROM items WHERE name = 'only-in-the-clone'`); got != "0" {
		t.Errorf("the clone's write reached the source: %s rows", got)
	}
	if got := exPgSum(ctx, t, cloneDSN(ctx, t, env, srcApp)); got != want {
		t.Errorf("source database %s, want it unchanged %s", got, want)
	}
}

// cloneDSN is a DSN of app's database through a port-forward.
func cloneDSN(ctx context.Context, t *testing.T, env *cluster.Env, app exApp) string {
	t.Helper()
	port := portForward(t, env, app.ns, exPod(ctx, t, env, app.ns, "app=db"), 5432)
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", app.password, port)
}
