package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// TestApplyPlan_TerraformAndHelmShowTheSamePlan runs the same request
// through `terraform plan` (unikube_state_apply's restore_plan, the
// provider built from this checkout) and `helm state apply --dry-run -o
// json` against a release installed with helm, before any apply, after
// one, for a subset of the components and after a hand edit of a table
// (the db component is "changed since apply"): both show the same plan,
// component by component.
func TestApplyPlan_TerraformAndHelmShowTheSamePlan(t *testing.T) {
	env := cluster.Require(t)
	tfBin, err := exec.LookPath("terraform")
	if err != nil {
		testenv.Missing(t, "terraform is not on PATH (scripts/install-deps.sh installs it): %v", err)
	}
	hs := helmplugin.Binaries(t)
	if len(hs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w := newHelmWorld(ctx, t, hs[0])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	helmSeedVersion(ctx, t, w, "seed", "CREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items VALUES (1, 'seeded');\n")
	w.ok(ctx, t, "install", "shop", filepath.Join("..", "..", "examples", "quickstart", "chart"), "-f", w.valuesFile(t), "--wait", "--timeout", "5m")
	shopData{w: w, release: "shop"}.waitReady(ctx, t)

	tf := newTerraformDir(ctx, t, tfBin)
	tf.env = append(tf.env, client.EnvEndpoint+"="+w.url, client.EnvToken+"="+w.token, "KUBECONFIG="+env.Kubeconfig)
	terraformPlan := func(t *testing.T, components []string) []executor.PlanItem {
		t.Helper()
		subset := ""
		if len(components) > 0 {
			b, _ := json.Marshal(components)
			subset = "components = " + string(b)
		}
		tf.write(t, fmt.Sprintf(`
terraform {
  required_providers {
    unikube = { source = "unikubehq/unikube" }
  }
}

provider "unikube" {}

resource "unikube_state_apply" "shop" {
  state = "shop/seed:v1"
  %[3]s

  kubernetes {
    namespace   = %[1]q
    release     = "shop"
    agent_image = %[2]q
  }
}
`, w.ns, env.Image("unikube-agent"), subset))
		tf.run(ctx, t, "plan", "-out=tfplan", "-input=false", "-no-color")
		var show struct {
			ResourceChanges []struct {
				Address string `json:"address"`
				Change  struct {
					After struct {
						RestorePlan []executor.PlanItem `json:"restore_plan"`
					} `json:"after"`
				} `json:"change"`
			} `json:"resource_changes"`
		}
		if err := json.Unmarshal([]byte(tf.output(ctx, t, "show", "-json", "tfplan")), &show); err != nil {
			t.Fatalf("terraform show -json: %v", err)
		}
		for _, rc := range show.ResourceChanges {
			if rc.Address == "unikube_state_apply.shop" {
				return rc.Change.After.RestorePlan
			}
		}
		t.Fatalf("terraform plan has no unikube_state_apply.shop: %+v", show)
		return nil
	}
	helmPlan := func(t *testing.T, components []string, extra ...string) []executor.PlanItem {
		t.Helper()
		args := append([]string{"state", "apply", "shop/seed:v1", "shop", "--dry-run", "-o", "json"}, extra...)
		for _, c := range components {
			args = append(args, "--component", c)
		}
		var p executor.Plan
		if err := json.Unmarshal([]byte(w.ok(ctx, t, args...)), &p); err != nil {
			t.Fatalf("helm state apply --dry-run -o json: %v", err)
		}
		return p.Components
	}

	for _, tc := range []struct {
		name       string
		before     func(t *testing.T)
		components []string
		action     string
		// db, when set, is db's action and the start of its reason.
		db, dbReason string
	}{
		{name: "nothing applied yet", action: "replace"},
		{name: "after an apply", before: func(t *testing.T) { w.ok(ctx, t, "state", "apply", "shop/seed:v1", "shop") }, action: "skip"},
		{name: "one component", components: []string{"db"}, action: "skip"},
		{name: "after a hand edit of a table", before: func(t *testing.T) {
			// The records and the marker still say v1 is there: only the
			// table's counters (the db agent's plan) can see the edit.
			exPgExec(ctx, t, shopData{w: w, release: "shop"}.dsn(ctx, t), `UPDATE items SET name = 'edited by hand' WHERE id = 1`)
		}, action: "skip", db: "replace", dbReason: "changed since apply: public.items: 1 updated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			fromTerraform, fromHelm := terraformPlan(t, tc.components), helmPlan(t, tc.components)
			t.Logf("terraform: %+v\nhelm:      %+v", fromTerraform, fromHelm)
			for i, it := range fromHelm {
				if it.Component == "db" && tc.db != "" && (len(it.Changed) != 1 || it.Changed[0] != "public.items: 1 updated") {
					t.Errorf("helm's plan of db names %q as changed, want public.items: 1 updated", it.Changed)
				}
				// What Terraform's restore_plan has no attribute for.
				fromHelm[i].Changed, fromHelm[i].Warnings = nil, nil
			}
			if !reflect.DeepEqual(fromTerraform, fromHelm) {
				t.Errorf("terraform's restore_plan\n%+v\ndiffers from helm's plan\n%+v", fromTerraform, fromHelm)
			}
			want := 2
			if len(tc.components) > 0 {
				want = len(tc.components)
			}
			if len(fromHelm) != want {
				t.Fatalf("plan of %d components, want %d", len(fromHelm), want)
			}
			for _, it := range fromHelm {
				action, reason := tc.action, ""
				if it.Component == "db" && tc.db != "" {
					action, reason = tc.db, tc.dbReason
				}
				if it.Action != action || it.Reason == "" || !strings.HasPrefix(it.Reason, reason) || !strings.HasPrefix(it.Target, w.ns+"/") {
					t.Errorf("component %s: %s (%s) into %s; want %s with a reason starting %q, into the namespace", it.Component, it.Action, it.Reason, it.Target, action, reason)
				}
			}
		})
	}

	// --force: what the records say is there is restored again (Terraform
	// says the same when reapply_triggers changes, which needs a state:
	// see the provider's acceptance tests).
	forced := helmPlan(t, []string{"db"}, "--force")
	if len(forced) != 1 || forced[0].Component != "db" || forced[0].Action != "replace" || !strings.HasPrefix(forced[0].Reason, "forced") {
		t.Errorf("helm state apply --component db --force --dry-run: %+v, want db alone, replaced because forced", forced)
	}
}

// output runs terraform in the directory and returns its stdout; a
// non-zero exit fails the test with its output.
func (d *terraformDir) output(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Dir, cmd.Env = d.dir, d.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}
