package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccProjectDataSources: unikube_project reads a project's states and
// project grants (not state grants); unikube_projects lists the projects.
func TestAccProjectDataSources(t *testing.T) {
	accPlatform(t)
	const config = `
resource "unikube_project" "payments" {
  name                = "payments"
  description         = "Payment service"
  deletion_protection = false
}

resource "unikube_project_access" "devs" {
  project = unikube_project.payments.name
  subject = "group:payments-devs"
  role    = "applier"
}

resource "unikube_named_state" "ledger" {
  project             = unikube_project.payments.name
  name                = "ledger"
  deletion_protection = false

  access {
    subject = "group:qa"
    role    = "viewer"
  }
}

data "unikube_project" "payments" {
  name       = unikube_project.payments.name
  depends_on = [unikube_project_access.devs, unikube_named_state.ledger]
}

data "unikube_projects" "all" {
  depends_on = [unikube_project.payments]
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.unikube_project.payments", tfjsonpath.New("description"), knownvalue.StringExact("Payment service")),
				statecheck.ExpectKnownValue("data.unikube_project.payments", tfjsonpath.New("states"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("ledger")})),
				statecheck.ExpectKnownValue("data.unikube_project.payments", tfjsonpath.New("access"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectExact(map[string]knownvalue.Check{"subject": knownvalue.StringExact("group:payments-devs"), "role": knownvalue.StringExact("applier")}),
				})),
				// accPlatform's project shop and this one, by name.
				statecheck.ExpectKnownValue("data.unikube_projects.all", tfjsonpath.New("projects"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("payments"), "created_by": knownvalue.StringExact("admin")}),
					knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("shop")}),
				})),
			},
		}},
	})
}
