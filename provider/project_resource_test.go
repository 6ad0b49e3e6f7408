package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func projectConfig(name, description string, protected bool) string {
	return fmt.Sprintf(`
resource "unikube_project" "test" {
  name                = %q
  description         = %q
  deletion_protection = %t
}
`, name, description, protected)
}

func TestAccProjectResource_Lifecycle(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_project.test"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: checkGone("project payments", func() error {
			_, err := admin.GetProject(ctx, "payments")
			return err
		}),
		Steps: []resource.TestStep{
			{
				Config: projectConfig("payments", "Payment service", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("payments")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_by"), knownvalue.StringExact("admin")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT`))),
				},
			},
			// The description changes in place, and the platform says so.
			{
				Config: projectConfig("payments", "Payments, refunds and invoices", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: func(*terraform.State) error {
					p, err := admin.GetProject(ctx, "payments")
					if err != nil {
						return err
					}
					if p.Description != "Payments, refunds and invoices" {
						return fmt.Errorf("description on the platform is %q", p.Description)
					}
					return nil
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "payments",
				ImportStateVerify: true,
				// Protection lives only in the configuration (an import is protected).
				ImportStateVerifyIgnore: []string{"deletion_protection"},
			},
			// A description changed on the platform shows as drift and is
			// set back.
			{
				PreConfig: func() {
					if _, err := admin.UpdateProject(ctx, "payments", "changed behind Terraform's back"); err != nil {
						t.Fatal(err)
					}
				},
				Config: projectConfig("payments", "Payments, refunds and invoices", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
			},
			// A project deleted on the platform is created again.
			{
				PreConfig: func() {
					if err := admin.DeleteProject(ctx, "payments"); err != nil {
						t.Fatal(err)
					}
				},
				Config: projectConfig("payments", "Payments, refunds and invoices", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
			},
			// Nothing changed: the plan is empty.
			{
				Config: projectConfig("payments", "Payments, refunds and invoices", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// TestAccProjectResource_DeletionProtection: a protected project can be
// neither destroyed nor renamed (which replaces it) until protection is
// turned off; the project and its states stay on the platform meanwhile.
func TestAccProjectResource_DeletionProtection(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_project.test"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: checkGone("project kept", func() error {
			_, err := admin.GetProject(ctx, "kept")
			return err
		}),
		Steps: []resource.TestStep{
			{
				Config: `resource "unikube_project" "test" {
  name = "kept"
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("deletion_protection"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("description"), knownvalue.StringExact("")),
				},
			},
			{
				Config:      `# nothing`,
				ExpectError: regexp.MustCompile(`Project is protected from deletion`),
			},
			{
				Config:      projectConfig("kept-renamed", "", true),
				ExpectError: regexp.MustCompile(`Project is protected from deletion`),
			},
			{
				Config: projectConfig("kept", "", false),
				Check: func(*terraform.State) error {
					_, err := admin.GetProject(ctx, "kept")
					return err
				},
			},
		},
	})
}

func TestAccProjectResource_ImportRejectsBadID(t *testing.T) {
	accPlatform(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:        projectConfig("payments", "", false),
			ResourceName:  "unikube_project.test",
			ImportState:   true,
			ImportStateId: "Not A Name",
			ExpectError:   regexp.MustCompile(`Invalid import ID`),
		}},
	})
}
