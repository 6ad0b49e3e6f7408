package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

// TestAccAccessAsCode_TeardownKeepsProtectedData: a team's set-up is torn
// down as the guide says: the grants and tokens are destroyed, the
// protected project and state are forgotten by Terraform (removed blocks
// with destroy = false) and stay on the platform with their data.
func TestAccAccessAsCode_TeardownKeepsProtectedData(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const team = `
resource "unikube_project" "payments" {
  name = "payments"
}

resource "unikube_project_access" "devs" {
  project = unikube_project.payments.name
  subject = "group:payments-devs"
  role    = "applier"
}

resource "unikube_named_state" "seed" {
  project = unikube_project.payments.name
  name    = "seed"
}

resource "unikube_token" "deploy" {
  name = "deploy"
  user = "ci-bot"
}

resource "unikube_project_access" "deploy" {
  project = unikube_project.payments.name
  subject = unikube_token.deploy.subject
  role    = "maintainer"
}
`
	const teardown = `
removed {
  from = unikube_project.payments
  lifecycle {
    destroy = false
  }
}

removed {
  from = unikube_named_state.seed
  lifecycle {
    destroy = false
  }
}
`
	var secret string
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_7_0)},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: team,
				Check: func(s *terraform.State) error {
					var err error
					secret, err = secretOf(s, "unikube_token.deploy")
					return err
				},
			},
			{
				Config: team,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config: teardown,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("unikube_project_access.devs", plancheck.ResourceActionDestroy),
						plancheck.ExpectResourceAction("unikube_project_access.deploy", plancheck.ResourceActionDestroy),
						plancheck.ExpectResourceAction("unikube_token.deploy", plancheck.ResourceActionDestroy),
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRevoked(t, "the deploy token after the teardown", &secret),
					checkProjectGrants(admin, map[string]string{}),
					func(*terraform.State) error {
						_, err := admin.GetState(ctx, "payments", "seed")
						return err
					},
				),
			},
		},
	})
}
