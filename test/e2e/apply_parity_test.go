package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// parityToken is the sensitive variable of the scripts: it reaches them
// through TF_VAR_ and the environment, never a command line, and no
// output, plan or run record may show it.
const parityToken = "tok-parity-2718-do-not-show"

// TestApplyParity_HooksScriptsAndSubstitutionsGiveTheSameResultThroughTerraformAndHelm
// applies one version of a `kubernetes` component (a ConfigMap and a
// Secret naming staging hosts) into two namespaces running the same Helm
// release: once with unikube_state_apply (real terraform, the provider of
// this checkout) and once with `helm state apply` (Helm 3 and Helm 4, the
// plugin's release archive), each with the same hooks (one tolerated
// failure), pre/post scripts with a sensitive variable, and substitution
// rules selecting by kind, name, key and env var. Both namespaces end the
// same: the same values rewritten (and only those), the hooks' marks in the
// pod in order, the scripts' runs with the same output, the same record;
// helm's dry run shows the hooks, scripts and rules first.
func TestApplyParity_HooksScriptsAndSubstitutionsGiveTheSameResultThroughTerraformAndHelm(t *testing.T) {
	env := cluster.Require(t)
	tfBin, err := exec.LookPath("terraform")
	if err != nil {
		testenv.Missing(t, "terraform is not on PATH (scripts/install-deps.sh installs it): %v", err)
	}
	hs := helmplugin.Binaries(t)
	if len(hs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	url, admin := exPlatform(t, env)

	// The version: the configuration of a staging namespace.
	src := env.Namespace(t)
	cfgLabels := map[string]string{"app.kubernetes.io/part-of": "shop-config"}
	if _, err := env.Client.CoreV1().ConfigMaps(src).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-config", Labels: cfgLabels},
		Data: map[string]string{"DATABASE_HOST": "db.staging.svc", "CACHE_HOST": "cache.staging.svc",
			".env": "DATABASE_HOST=db.staging.svc\nCACHE_HOST=cache.staging.svc\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(src).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-settings", Labels: cfgLabels},
		StringData: map[string]string{"DATABASE_URL": "postgres://db.staging.svc/shop", "API_KEY": "staging-key"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "config", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: src, Platform: admin, PlatformURL: url, UploadToken: exAdminToken,
		Project: "shop", State: "config", Tag: "v1", AgentImage: env.Image("unikube-agent"),
		Mappings: []discovery.Mapping{{Component: "config", Kind: statepkg.KindKubernetes, Selector: "app.kubernetes.io/part-of=shop-config"}},
	}); err != nil {
		t.Fatalf("capture the staging configuration: %v", err)
	}
	if _, err := admin.PutScript(ctx, "shop", "announce", client.ScriptSpec{Interpreter: "sh", Image: env.Image("busybox"),
		Body:      `echo "phase=$PHASE token-length=${#TOKEN}"` + "\n",
		Variables: []client.Variable{{Name: "PHASE", Required: true}, {Name: "TOKEN", Required: true, Sensitive: true}}}); err != nil {
		t.Fatal(err)
	}
	chart := parityChart(t)

	// Terraform, in its own namespace.
	tw := newHelmWorldWith(ctx, t, hs[0], env, env.Namespace(t), url, admin, exAdminToken)
	tw.ok(ctx, t, "install", "shop", chart, "--set", "image="+env.Image("busybox"), "--wait", "--timeout", "5m")
	tf := newTerraformDir(ctx, t, tfBin)
	tf.env = append(tf.env, client.EnvEndpoint+"="+url, client.EnvToken+"="+exAdminToken, "KUBECONFIG="+env.Kubeconfig, "TF_VAR_token="+parityToken)
	tf.write(t, fmt.Sprintf(`
terraform {
  required_providers {
    unikube = { source = "unikubehq/unikube" }
  }
}

provider "unikube" {}

variable "token" {
  type      = string
  sensitive = true
}

resource "unikube_state_apply" "shop" {
  state = "shop/config:v1"

  kubernetes {
    namespace   = %q
    release     = "shop"
    agent_image = %q

    hooks {
      pre {
        selector = "app=web"
        command  = ["sh", "-c", "echo pre >> /tmp/hooks"]
      }
      pre {
        selector = "app=web"
        command  = ["sh", "-c", "exit 3"]
        on_error = "continue"
      }
      post {
        selector = "app=web"
        command  = ["sh", "-c", "echo post >> /tmp/hooks"]
      }
    }

    substitution {
      kinds = ["ConfigMap"]
      keys  = ["DATABASE_HOST"]
      old   = "staging"
      new   = "dev"
    }
    substitution {
      kinds   = ["ConfigMap"]
      env_var = "DATABASE_HOST"
      old     = "staging"
      new     = "dev"
    }
    substitution {
      kinds = ["Secret"]
      names = ["shop-settings"]
      keys  = ["DATABASE_URL"]
      old   = "staging"
      new   = "dev"
    }
  }

  pre_script {
    script    = "shop/announce"
    variables = { PHASE = "pre", TOKEN = var.token }
  }
  post_script {
    script    = "shop/announce"
    variables = { PHASE = "post", TOKEN = var.token }
  }
}
`, tw.ns, env.Image("unikube-agent")))
	start := time.Now()
	tf.run(ctx, t, "apply", "-auto-approve", "-input=false", "-no-color")
	t.Logf("terraform apply took %s", time.Since(start).Round(100*time.Millisecond))
	want := parityOutcome(ctx, t, env, admin, tw.ns)
	t.Logf("terraform's outcome: %+v", want)
	if state, err := os.ReadFile(filepath.Join(tf.dir, "terraform.tfstate")); err != nil || strings.Contains(string(state), parityToken) {
		t.Errorf("terraform state (%v) holds the scripts' token", err)
	}

	forEachHelm(t, func(t *testing.T, h helmplugin.Helm) {
		w := newHelmWorldWith(ctx, t, h, env, env.Namespace(t), url, admin, exAdminToken)
		w.baseEnv = append(w.baseEnv, "ANNOUNCE_TOKEN="+parityToken)
		w.ok(ctx, t, "install", "shop", chart, "--set", "image="+env.Image("busybox"), "--wait", "--timeout", "5m")
		dir := t.TempDir()
		files := map[string]string{
			"hooks.yaml": `pre:
  - selector: app=web
    command: ["sh", "-c", "echo pre >> /tmp/hooks"]
  - selector: app=web
    command: ["sh", "-c", "exit 3"]
    on_error: continue
`,
			"scripts.yaml": `pre:
  - script: shop/announce
    variables: {PHASE: pre}
    variables_from_env: {TOKEN: ANNOUNCE_TOKEN}
post:
  - script: shop/announce
    variables: {PHASE: post}
    variables_from_env: {TOKEN: ANNOUNCE_TOKEN}
`,
			"substitutions.json": `[
  {"kinds": ["ConfigMap"], "keys": ["DATABASE_HOST"], "old": "staging", "new": "dev"},
  {"kinds": ["ConfigMap"], "env_var": "DATABASE_HOST", "old": "staging", "new": "dev"},
  {"kinds": ["Secret"], "names": ["shop-settings"], "keys": ["DATABASE_URL"], "old": "staging", "new": "dev"}
]`,
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args := []string{"state", "apply", "shop/config:v1", "shop",
			"--hooks", filepath.Join(dir, "hooks.yaml"), "--post-hook", "app=web: echo post >> /tmp/hooks",
			"--scripts", filepath.Join(dir, "scripts.yaml"), "--substitutions", filepath.Join(dir, "substitutions.json")}

		// The dry run shows what runs around the restore, and changes nothing.
		out := w.ok(ctx, t, append(args, "--dry-run", "-o", "json")...)
		var p executor.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("helm state apply --dry-run -o json: %v\n%s", err, out)
		}
		if len(p.Hooks) != 3 || p.Hooks[0].When != "pre" || p.Hooks[1].OnError != "continue" || p.Hooks[2].When != "post" || len(p.Hooks[0].Pods) != 1 {
			t.Errorf("plan hooks %+v, want pre, pre (continue), post, each on the one web pod", p.Hooks)
		}
		if len(p.Scripts) != 2 || p.Scripts[0].Script != "shop/announce" || p.Scripts[0].Namespace != w.ns ||
			!reflect.DeepEqual(p.Scripts[1].Variables, []string{"PHASE", "TOKEN"}) {
			t.Errorf("plan scripts %+v, want shop/announce pre and post in %s setting PHASE and TOKEN", p.Scripts, w.ns)
		}
		if len(p.Substitutions) != 3 || p.Substitutions[1].EnvVar != "DATABASE_HOST" || !reflect.DeepEqual(p.Substitutions[2].Names, []string{"shop-settings"}) {
			t.Errorf("plan substitutions %+v, want the file's three rules", p.Substitutions)
		}
		table := w.ok(ctx, t, append(args, "--dry-run")...)
		for _, s := range []string{"shop/announce", "echo post >> /tmp/hooks", "SUBSTITUTION", "(hidden)"} {
			if !strings.Contains(table, s) {
				t.Errorf("helm state apply --dry-run does not show %q:\n%s", s, table)
			}
		}
		if _, err := env.Client.CoreV1().ConfigMaps(w.ns).Get(ctx, "shop-config", metav1.GetOptions{}); err == nil {
			t.Errorf("the dry run created shop-config")
		}

		start := time.Now()
		applied, errOut, code := w.run(ctx, t, args...)
		if code != 0 {
			t.Fatalf("helm state apply: exit %d\n%s\n%s", code, applied, errOut)
		}
		t.Logf("helm state apply took %s:\n%s", time.Since(start).Round(100*time.Millisecond), applied)
		for _, o := range []string{out, table, applied, errOut} {
			if strings.Contains(o, parityToken) {
				t.Errorf("helm printed the scripts' token:\n%s", o)
			}
		}
		got := parityOutcome(ctx, t, env, admin, w.ns)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("helm's outcome\n%+v\ndiffers from terraform's\n%+v", got, want)
		}
	})
}

// parityOutcome is what an apply left in ns, free of names and times that
// differ between two namespaces.
type parityResult struct {
	Config, Settings map[string]string
	Hooks            string
	Scripts          []string // status and output of each run, in order
	Record           string   // status and component actions
}

func parityOutcome(ctx context.Context, t *testing.T, env *cluster.Env, admin *client.Client, ns string) parityResult {
	t.Helper()
	var r parityResult
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "shop-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s: %v", ns, err)
	}
	r.Config = cm.Data
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "shop-settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s: %v", ns, err)
	}
	r.Settings = map[string]string{}
	for k, v := range s.Data {
		r.Settings[k] = string(v)
	}
	wantConfig := map[string]string{"DATABASE_HOST": "db.dev.svc", "CACHE_HOST": "cache.staging.svc",
		".env": "DATABASE_HOST=db.dev.svc\nCACHE_HOST=cache.staging.svc\n"}
	wantSettings := map[string]string{"DATABASE_URL": "postgres://db.dev.svc/shop", "API_KEY": "staging-key"}
	if !reflect.DeepEqual(r.Config, wantConfig) || !reflect.DeepEqual(r.Settings, wantSettings) {
		t.Errorf("%s: shop-config %v shop-settings %v, want %v and %v (only the selected values rewritten)", ns, r.Config, r.Settings, wantConfig, wantSettings)
	}
	out, errOut, err := execIn(ctx, env, ns, exPod(ctx, t, env, ns, "app=web"), "web", nil, "cat", "/tmp/hooks")
	if err != nil {
		t.Errorf("%s: read the hooks' marks: %v %s", ns, err, errOut)
	}
	r.Hooks = out
	if out != "pre\npost\n" {
		t.Errorf("%s: hooks wrote %q, want pre then post", ns, out)
	}
	runs, err := admin.ListRuns(ctx, "shop", "announce", 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(runs, func(a, b client.Run) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, run := range runs {
		if run.Target != "namespace/"+ns {
			continue
		}
		r.Scripts = append(r.Scripts, run.Status+": "+strings.TrimSpace(run.LogTail))
		if strings.Contains(fmt.Sprint(run.Variables), parityToken) || strings.Contains(run.LogTail, parityToken) {
			t.Errorf("%s: the run record of %s shows the token: %+v", ns, run.ID, run)
		}
	}
	wantScripts := []string{
		client.RunSucceeded + fmt.Sprintf(": phase=pre token-length=%d", len(parityToken)),
		client.RunSucceeded + fmt.Sprintf(": phase=post token-length=%d", len(parityToken)),
	}
	if !reflect.DeepEqual(r.Scripts, wantScripts) {
		t.Errorf("%s: script runs %q, want %q", ns, r.Scripts, wantScripts)
	}
	rs, err := records.List(ctx, env.Client, ns, "shop")
	if err != nil || len(rs) != 1 {
		t.Fatalf("%s: records %+v (%v), want one", ns, rs, err)
	}
	r.Record = rs[0].Status
	for _, c := range rs[0].Components {
		r.Record += " " + c.Name + ":" + c.Action
	}
	return r
}

// parityChart writes a chart of one busybox Deployment, web: the pods the
// hooks run in.
func parityChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
		"values.yaml": "image: busybox\n",
		"templates/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, app.kubernetes.io/instance: {{ .Release.Name }}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  strategy: {type: Recreate}
  template:
    metadata:
      labels: {app: web, app.kubernetes.io/instance: {{ .Release.Name }}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 999, runAsGroup: 999, fsGroup: 999}
      containers:
        - name: web
          image: {{ .Values.image }}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "while true; do sleep 1; done"]
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
