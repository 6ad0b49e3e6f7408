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
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

func kubeImportConfig(dump, ns, release string) string {
	return fmt.Sprintf(`
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
  state = unikube_named_state.seed.ref

  kubernetes {
    namespace = %[2]q
    release   = %[3]q
  }
}
`, dump, ns, release)
}

// TestAccStateApplyResource_KubernetesImportRoundTrips: an in-cluster apply
// has the id namespace/release; importing it by that id reads the newest
// record Secret into the block, digest, record and results, so the plan
// after the import is empty (a planned import block) and a `terraform
// import` gives the state the apply wrote. -replace restores a dirtied
// database again. An id that is neither a
// namespace/release with records nor a state the platform knows is refused,
// saying both.
func TestAccStateApplyResource_KubernetesImportRoundTripsAndReplaceRestores(t *testing.T) {
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
	config := kubeImportConfig(dump, ns, release)
	const addr = "unikube_state_apply.dev"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(ns+"/"+release)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkPodRows(env, ns, 2), checkApplied(env, ns, release, 1)),
			},
			{
				// An import block, planned: no change at all.
				Config:          config,
				ResourceName:    addr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   ns + "/" + release,
				ImportPlanChecks: resource.ImportPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(1)),
					},
				},
			},
			{
				// terraform import: the state it reads back is the one the
				// apply wrote (but for what the plan showed before it).
				Config:                  config,
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           ns + "/" + release,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"restore_plan"},
			},
			{
				// -replace (a taint) restores the version again although the
				// record and the marker say it is there: the hand-added row
				// is gone.
				PreConfig: dirtyDatabase(t, env, ns),
				Taint:     []string{addr},
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkPodRows(env, ns, 2), checkApplied(env, ns, release, 2)),
			},
			{
				Config:        config,
				ResourceName:  addr,
				ImportState:   true,
				ImportStateId: ns + "/no-such-release",
				ExpectError:   regexp.MustCompile(`(?s)neither the namespace/release.*no\s+apply\s+records.*no-such-release\).*nor\s+a\s+state\s+reference`),
			},
		},
	})
}
