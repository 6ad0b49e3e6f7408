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

const scriptSecret = "s3cret-smtp-p4ssw0rd"

func scriptConfig(name, description, body string) string {
	return fmt.Sprintf(`
variable "smtp_password" {
  type      = string
  sensitive = true
  default   = %[4]q
}

resource "unikube_script" "test" {
  project     = "shop"
  name        = %[1]q
  description = %[2]q
  image       = "postgres:16"
  interpreter = "bash"
  body        = %[3]q

  variables = [
    { name = "DATABASE_URL", required = true },
    { name = "BATCH_SIZE", default = "1000" },
    { name = "SMTP_PASSWORD", sensitive = true, default_wo = var.smtp_password, default_wo_version = 1 },
  ]

  service_account = "seeder"
  credentials = [
    { secret = "shop-db", keys = ["PGUSER", "PGPASSWORD"] },
  ]
}
`, name, description, body, scriptSecret)
}

func TestAccScriptResource_Lifecycle(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_script.test"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   writeOnlyArguments,
		CheckDestroy: func(s *terraform.State) error {
			for _, name := range []string{"anonymize", "anonymize-v2"} {
				if err := checkGone("script shop/"+name, func() error {
					_, err := admin.GetScript(ctx, testProject, name)
					return err
				})(s); err != nil {
					return err
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			// Create; the post-apply plan must be empty (the framework checks).
			{
				Config: scriptConfig("anonymize", "first", "echo one"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectNoSecretInPlan(scriptSecret)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("shop/anonymize")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("interpreter"), knownvalue.StringExact("bash")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("author"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("variables").AtSliceIndex(1).AtMapKey("default"), knownvalue.StringExact("1000")),
					// The write-only default never reaches the state.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("variables").AtSliceIndex(2).AtMapKey("default_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("variables").AtSliceIndex(2).AtMapKey("default"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("credentials").AtSliceIndex(0).AtMapKey("keys"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("PGUSER"), knownvalue.StringExact("PGPASSWORD")})),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkNoSecretInState(scriptSecret),
					// ... but it reached the platform.
					func(*terraform.State) error {
						s, err := admin.GetScript(ctx, testProject, "anonymize")
						if err != nil {
							return err
						}
						// The platform keeps it sealed: shown as set, handed
						// only to the applier starting a run.
						if len(s.Variables) != 3 || s.Variables[2].Default != "" || !s.Variables[2].DefaultSet || !s.Variables[2].Sensitive {
							return fmt.Errorf("platform shows variables %+v, want the sensitive default set and hidden", s.Variables)
						}
						run, err := admin.CreateRun(ctx, testProject, "anonymize", map[string]string{"DATABASE_URL": "postgres://db"}, "acc")
						if err != nil {
							return err
						}
						if run.SensitiveDefaults["SMTP_PASSWORD"] != scriptSecret {
							return fmt.Errorf("a run gets sensitive defaults %v, want the default_wo sent", run.SensitiveDefaults)
						}
						if s.Body != "echo one" || s.Credentials[0].Secret != "shop-db" {
							return fmt.Errorf("platform has %+v", s)
						}
						return nil
					},
				),
			},
			// Changing the body or description updates in place.
			{
				Config: scriptConfig("anonymize", "second", "echo two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("body"), knownvalue.StringExact("echo two")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("description"), knownvalue.StringExact("second")),
				},
				Check: checkNoSecretInState(scriptSecret),
			},
			// Import by project/name gives the same state (write-only
			// bookkeeping is not on the platform).
			{
				ResourceName:                         addr,
				ImportState:                          true,
				ImportStateId:                        "shop/anonymize",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "id",
				ImportStateVerifyIgnore:              []string{"variables.2.default_wo_version"},
			},
			// Drift: deleted outside Terraform, the plan recreates it.
			{
				PreConfig: func() {
					if err := admin.DeleteScript(ctx, testProject, "anonymize"); err != nil {
						t.Fatalf("delete script behind Terraform's back: %v", err)
					}
				},
				Config: scriptConfig("anonymize", "second", "echo two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
			},
			// Renaming replaces.
			{
				Config: scriptConfig("anonymize-v2", "second", "echo two"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("shop/anonymize-v2")),
				},
			},
		},
	})
}

func TestAccScriptResource_ValidationIsPlanTime(t *testing.T) {
	accPlatform(t)
	script := func(extra string) string {
		return `
resource "unikube_script" "test" {
  project = "shop"
  name    = "check"
  image   = "alpine:3"
  body    = "true"
  ` + extra + `
}
`
	}
	cases := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown interpreter", script(`interpreter = "perl"`), `(?s)Attribute interpreter value must be one of`},
		{"invalid name", `
resource "unikube_script" "test" {
  project = "shop"
  name    = "Not_A_Label"
  image   = "alpine:3"
  body    = "true"
}`, `(?s)with unikube_script.test,.*name.*lowercase DNS label`},
		{"required variable with default", script(`variables = [{ name = "TARGET", required = true, default = "x" }]`),
			`Required variable with a default`},
		{"sensitive variable with plain default", script(`variables = [{ name = "TOKEN", sensitive = true, default = "x" }]`),
			`(?s)Sensitive variable with a plain default`},
		{"duplicate variable", script(`variables = [{ name = "A" }, { name = "A" }]`), `Variable "A" is already declared at index 0`},
		{"bad variable name", script(`variables = [{ name = "1A" }]`), `(?s)environment variable name`},
		{"bad secret name", script(`credentials = [{ secret = "DB_Creds" }]`), `(?s)Invalid Kubernetes object name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}
