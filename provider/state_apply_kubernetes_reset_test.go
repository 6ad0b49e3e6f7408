package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

func kubeResetConfig(dump, ns, agentImage, trigger, components string) string {
	return fmt.Sprintf(`
provider "unikube" {
  agent_image = %[4]q
}

resource "unikube_named_state" "seed" {
  project             = "shop"
  name                = "seed"
  deletion_protection = false

  component {
    name = "db"
    kind = "postgres"
    source {
      path = %[1]q
    }
  }
}

resource "unikube_state_apply" "dev" {
  state            = "shop/seed@${unikube_named_state.seed.version_digest}"
  reapply_triggers = { reset = %[5]q }
  components       = %[6]s

  kubernetes {
    namespace = %[2]q
    release   = %[3]q

    mapping {
      component = "db"
      quiesce   = ["Deployment/web"]
      # The drift signal would see the hand edit (TestApplyPlan_* in
      # test/e2e shows that); here the plan must not, as for an app that
      # writes to its own database.
      options = { drift = "off" }
    }
  }
}
`, dump, ns, kubeAccRelease, agentImage, trigger, components)
}

// dirtyDatabase adds a customer by hand, as a test run against the
// developer's database would.
func dirtyDatabase(t *testing.T, env *cluster.Env, ns string) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := podSQL(ctx, env, ns, "INSERT INTO customers VALUES (99, 'left by a test')"); err != nil {
			t.Fatalf("dirty the database: %v", err)
		}
	}
}

// TestAccStateApplyResource_KubernetesReapplyTriggersResetADirtiedDatabase:
// after an apply, a row added by hand is invisible to a plan with drift
// off (the record and the marker say the version is there); changing reapply_triggers
// re-restores the version anyway, and the plan says why. components names
// the components to apply; an unknown one fails the plan naming it.
func TestAccStateApplyResource_KubernetesReapplyTriggersResetADirtiedDatabase(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 to run it against a real platform, terraform CLI and cluster")
	}
	env := cluster.Require(t)
	accKubePlatform(t, env)
	ns := env.Namespace(t)
	const release = kubeAccRelease
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubeApp(ctx, t, env, ns, release)
	dump := filepath.Join(t.TempDir(), "seed.sql")
	writeFile(t, dump, "CREATE TABLE customers (id int PRIMARY KEY, name text);\nINSERT INTO customers VALUES (1, 'ada'), (2, 'bob');\n")
	t.Setenv(envAgentImage, "")
	image := env.Image("unikube-agent")
	const addr = "unikube_state_apply.dev"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: kubeResetConfig(dump, ns, image, "1", `["db"]`),
				Check:  resource.ComposeAggregateTestCheckFunc(checkPodRows(env, ns, 2), checkApplied(env, ns, release, 1)),
			},
			{
				// A hand edit, with drift off: nothing a plan can see.
				PreConfig: dirtyDatabase(t, env, ns),
				Config:    kubeResetConfig(dump, ns, image, "1", `["db"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: checkPodRows(env, ns, 3),
			},
			{
				// A new trigger value resets the data to the version.
				Config: kubeResetConfig(dump, ns, image, "2", `["db"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("restore_plan").AtSliceIndex(0).AtMapKey("reason"),
							knownvalue.StringRegexp(regexp.MustCompile(`^forced`))),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkPodRows(env, ns, 2), checkWebBack(env, ns), checkApplied(env, ns, release, 2)),
			},
			{
				Config:      kubeResetConfig(dump, ns, image, "2", `["db", "nope"]`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Unknown component.*no component "nope"`),
			},
		},
		CheckDestroy: func(*terraform.State) error { return nil },
	})
}
