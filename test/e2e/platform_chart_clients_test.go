package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestPlatformChart_HelmStateApplyAndTerraformApplyWorkThroughIt installs
// charts/unikube-platform in embedded mode and drives it the way a user
// does: the Helm plugin (installed with `helm plugin install`) and the
// provider (built, run by the real terraform CLI) talk to it from this
// machine through a port-forward on 127.0.0.1, which no pod can reach; the
// agents they start must therefore use the in-cluster Service URL they
// are given (UNIKUBE_CLUSTER_ENDPOINT, the provider's platform_url).
// `helm state apply` and then `terraform apply` each restore a version
// into the quickstart shop release.
func TestPlatformChart_HelmStateApplyAndTerraformApplyWorkThroughIt(t *testing.T) {
	env := cluster.Require(t)
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		testenv.Missing(t, "terraform is not on PATH (scripts/install-deps.sh installs it): %v", err)
	}
	image := env.Image("unikube-platform")
	repo, tag, ok := splitImage(image)
	if !ok {
		t.Fatalf("E2E_IMAGE_UNIKUBE_PLATFORM=%q: want repository:tag", image)
	}
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s\n%s", podDiagnostics(context.Background(), env, ns), platformLogs(context.Background(), env, ns, "pf"))
		}
	})
	h := chartHelm{t: t, bin: helmBinary(t), kubeconfig: env.Kubeconfig, home: t.TempDir()}
	start := time.Now()
	h.run(ctx, "install", "pf", filepath.Join("..", "..", "charts", "unikube-platform"), "--namespace", ns, "--wait", "--timeout", "5m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=IfNotPresent",
		"--set", "storage.embedded.persistence.size=1Gi", "--set", "storage.embedded.persistence.keep=false")
	t.Logf("helm install --wait to ready (embedded mode): %s", time.Since(start).Round(100*time.Millisecond))

	token := chartAdminToken(ctx, t, env, ns, "pf")
	hostURL := fmt.Sprintf("http://127.0.0.1:%d", portForward(t, env, ns, platformPod(ctx, t, env, ns), 8080))
	inClusterURL := "http://pf-unikube-platform." + ns + ".svc:8080"
	admin, err := client.New(client.Config{Endpoint: hostURL, Token: token, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}

	// helm state apply: the plugin reaches the platform on the host URL,
	// its agents on the Service name.
	w := newHelmWorldOn(ctx, t, env, ns, hostURL, admin, token)
	w.baseEnv = append(w.baseEnv, "UNIKUBE_CLUSTER_ENDPOINT="+inClusterURL)
	helmSeedVersion(ctx, t, w, "seed", `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'seeded-' || g FROM generate_series(1, 300) g;`)
	w.ok(ctx, t, "install", "shop", filepath.Join("..", "..", "examples", "quickstart", "chart"), "-f", w.valuesFile(t), "--wait", "--timeout", "5m")
	d := shopData{w: w, release: "shop"}
	d.waitReady(ctx, t)
	out := w.ok(ctx, t, "state", "apply", "shop/seed:v1", "shop")
	if !strings.Contains(out, "applied") {
		t.Errorf("helm state apply printed no result:\n%s", out)
	}
	if got := exPgSum(ctx, t, d.dsn(ctx, t)); !strings.HasPrefix(got, "300:") {
		t.Errorf("items after helm state apply: %s, want 300 rows", got)
	}
	if got := d.webExec(ctx, t, "cat /uploads/img/hello.txt"); got != "hello from seed\n" {
		t.Errorf("uploads/img/hello.txt after helm state apply = %q", got)
	}

	// terraform apply: a named state made from a SQL file, applied into
	// the same release with the provider built from this checkout.
	tf := newTerraformDir(ctx, t, terraform)
	dump := filepath.Join(tf.dir, "seed.sql")
	if err := os.WriteFile(dump, []byte("CREATE TABLE items (id int PRIMARY KEY, name text);\n"+
		"INSERT INTO items SELECT g, 'terraform-' || g FROM generate_series(1, 42) g;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tf.write(t, fmt.Sprintf(`
terraform {
  required_providers {
    unikube = { source = "unikubehq/unikube" }
  }
}

provider "unikube" {}

resource "unikube_named_state" "tf" {
  project             = "shop"
  name                = "tf"
  deletion_protection = false

  component {
    name = "db"
    kind = "postgres"
    source {
      path = %[1]q
    }
  }
}

resource "unikube_state_apply" "shop" {
  state = "shop/tf@${unikube_named_state.tf.version_digest}"

  kubernetes {
    namespace    = %[2]q
    release      = "shop"
    quiesce      = true
    platform_url = %[3]q
    agent_image  = %[4]q

    mapping {
      component = "db"
      kind      = "StatefulSet"
      name      = "shop-db"
      quiesce   = ["Deployment/shop-web"]
    }
  }
}
`, dump, ns, inClusterURL, env.Image("unikube-agent")))
	tf.env = append(tf.env, client.EnvEndpoint+"="+hostURL, client.EnvToken+"="+token, "KUBECONFIG="+env.Kubeconfig)
	start = time.Now()
	tf.run(ctx, t, "apply", "-auto-approve", "-input=false", "-no-color")
	t.Logf("terraform apply through the chart's platform: %s", time.Since(start).Round(100*time.Millisecond))
	if got := exPgSum(ctx, t, d.dsn(ctx, t)); !strings.HasPrefix(got, "42:") {
		t.Errorf("items after terraform apply: %s, want 42 rows", got)
	}
	rec, err := records.Last(ctx, env.Client, ns, "shop", "")
	if err != nil || rec == nil || rec.Actor != "terraform" || rec.Status != records.StatusApplied {
		t.Errorf("last record of shop: %+v, %v; want one applied by terraform", rec, err)
	}
	if _, err := admin.GetVersion(ctx, "shop", "tf", "@latest"); err != nil {
		t.Errorf("the named state terraform made is not on the chart's platform: %v", err)
	}
	tf.run(ctx, t, "destroy", "-auto-approve", "-input=false", "-no-color")
}

// terraformDir is a Terraform working directory whose CLI configuration
// runs the provider built from this checkout (dev_overrides: no registry,
// no init).
type terraformDir struct {
	bin, dir string
	env      []string
}

func newTerraformDir(ctx context.Context, t *testing.T, bin string) *terraformDir {
	t.Helper()
	tmp := t.TempDir()
	plugins := filepath.Join(tmp, "plugins")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(plugins, "terraform-provider-unikube"), "../..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the provider: %v\n%s", err, out)
	}
	rc := filepath.Join(tmp, "terraform.rc")
	cfg := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/unikubehq/unikube\" = %q\n  }\n  direct {}\n}\n", plugins)
	if err := os.WriteFile(rc, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &terraformDir{bin: bin, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TF_CLI_CONFIG_FILE=" + rc,
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1",
	}}
}

func (d *terraformDir) write(t *testing.T, config string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs terraform in the directory and fails the test on a non-zero
// exit, with its output.
func (d *terraformDir) run(ctx context.Context, t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Dir, cmd.Env = d.dir, d.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}
