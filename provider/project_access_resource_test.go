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

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

func projectAccessConfig(devsRole string) string {
	return fmt.Sprintf(`
resource "unikube_project" "payments" {
  name                = "payments"
  deletion_protection = false
}

resource "unikube_project_access" "devs" {
  project = unikube_project.payments.name
  subject = "group:payments-devs"
  role    = %q
}

resource "unikube_project_access" "alice" {
  project = unikube_project.payments.name
  subject = "user:alice"
  role    = "maintainer"
}
`, devsRole)
}

// projectGrants returns the grants on the whole project as subject -> role.
func projectGrants(c *client.Client, project string) (map[string]string, error) {
	gs, err := c.ListGrants(context.Background(), project, "")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range gs {
		if g.State == "" {
			out[g.Subject] = g.Role
		}
	}
	return out, nil
}

func checkProjectGrants(c *client.Client, want map[string]string) resource.TestCheckFunc {
	const project = "payments"
	return func(*terraform.State) error {
		got, err := projectGrants(c, project)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("grants on project %s: got %v, want %v", project, got, want)
		}
		return nil
	}
}

func TestAccProjectAccessResource_Lifecycle(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const devs = "unikube_project_access.devs"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: checkGone("project payments", func() error {
			_, err := admin.GetProject(ctx, "payments")
			return err
		}),
		Steps: []resource.TestStep{
			{
				Config: projectAccessConfig("applier"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(devs, tfjsonpath.New("id"), knownvalue.StringExact("payments/group:payments-devs")),
				},
				Check: checkProjectGrants(admin, map[string]string{"group:payments-devs": "applier", "user:alice": "maintainer"}),
			},
			// A role changes in place; the other grant is untouched.
			{
				Config: projectAccessConfig("maintainer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(devs, plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("unikube_project_access.alice", plancheck.ResourceActionNoop),
					},
				},
				Check: checkProjectGrants(admin, map[string]string{"group:payments-devs": "maintainer", "user:alice": "maintainer"}),
			},
			{
				ResourceName:      devs,
				ImportState:       true,
				ImportStateId:     "payments/group:payments-devs",
				ImportStateVerify: true,
			},
			// Drift: a grant revoked through the API shows as a grant to
			// create, and the apply restores it. A grant another
			// configuration made is left alone.
			{
				PreConfig: func() {
					if err := admin.DeleteGrant(ctx, "payments", "", "group:payments-devs"); err != nil {
						t.Fatal(err)
					}
					if _, err := admin.PutGrant(ctx, "payments", "", "user:bob", client.RoleViewer); err != nil {
						t.Fatal(err)
					}
				},
				Config: projectAccessConfig("maintainer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(devs, plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("unikube_project_access.alice", plancheck.ResourceActionNoop),
					},
				},
				Check: checkProjectGrants(admin, map[string]string{"group:payments-devs": "maintainer", "user:alice": "maintainer", "user:bob": "viewer"}),
			},
			// A role changed through the API shows as an update.
			{
				PreConfig: func() {
					if _, err := admin.PutGrant(ctx, "payments", "", "user:alice", client.RoleOwner); err != nil {
						t.Fatal(err)
					}
				},
				Config: projectAccessConfig("maintainer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("unikube_project_access.alice", plancheck.ResourceActionUpdate)},
				},
				Check: checkProjectGrants(admin, map[string]string{"group:payments-devs": "maintainer", "user:alice": "maintainer", "user:bob": "viewer"}),
			},
			// Removing a resource revokes only its grant.
			{
				Config: regexp.MustCompile(`(?s)resource "unikube_project_access" "alice".*`).ReplaceAllString(projectAccessConfig("maintainer"), ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("unikube_project_access.alice", plancheck.ResourceActionDestroy)},
				},
				Check: checkProjectGrants(admin, map[string]string{"group:payments-devs": "maintainer", "user:bob": "viewer"}),
			},
		},
	})
}

func TestAccProjectAccessResource_InvalidInput(t *testing.T) {
	accPlatform(t)
	cases := map[string]struct{ config, want string }{
		"bad subject": {`resource "unikube_project_access" "x" {
  project = "shop"
  subject = "team:payments"
  role    = "viewer"
}`, `Invalid grant subject`},
		"bad role": {`resource "unikube_project_access" "x" {
  project = "shop"
  subject = "group:payments"
  role    = "admin"
}`, `value must be one of`},
		"missing project": {`resource "unikube_project_access" "x" {
  project = "nope"
  subject = "group:payments"
  role    = "viewer"
}`, `(?s)Could not grant viewer to group:payments on project nope.*does not exist`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    []resource.TestStep{{Config: tc.config, ExpectError: regexp.MustCompile(tc.want)}},
			})
		})
	}
}
