package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

func namedStateConfig(name, description string, access map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
resource "unikube_named_state" "test" {
  project             = "shop"
  name                = %q
  description         = %q
  deletion_protection = false
`, name, description)
	subjects := make([]string, 0, len(access))
	for s := range access {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	for _, s := range subjects {
		fmt.Fprintf(&b, "\n  access {\n    subject = %q\n    role    = %q\n  }\n", s, access[s])
	}
	b.WriteString("}\n")
	return b.String()
}

// grantsOn returns the state-scoped grants on shop/name as subject -> role.
func grantsOn(c *client.Client, name string) (map[string]string, error) {
	gs, err := c.ListGrants(context.Background(), testProject, name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range gs {
		if g.State != "" {
			out[g.Subject] = g.Role
		}
	}
	return out, nil
}

func checkGrants(c *client.Client, name string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := grantsOn(c, name)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("grants on shop/%s: got %v, want %v", name, got, want)
		}
		return nil
	}
}

func TestAccNamedStateResource_Lifecycle(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_named_state.test"
	first := map[string]string{"group:shop-devs": "applier", "user:alice": "maintainer"}
	second := map[string]string{"group:shop-devs": "viewer", "token:ci-bot:ci": "applier"}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			for _, name := range []string{"seed", "seed-v2"} {
				if err := checkGone("state shop/"+name, func() error {
					_, err := admin.GetState(ctx, testProject, name)
					return err
				})(s); err != nil {
					return err
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: namedStateConfig("seed", "first", first),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("shop/seed")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tag"), knownvalue.StringExact("@random")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("access"), knownvalue.SetSizeExact(2)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("content_hash"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("version_digest"), knownvalue.Null()),
				},
				Check: checkGrants(admin, "seed", first),
			},
			// Description and grants change in place; grants no longer
			// listed are revoked.
			{
				Config: namedStateConfig("seed", "second", second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkGrants(admin, "seed", second),
					func(*terraform.State) error {
						st, err := admin.GetState(ctx, testProject, "seed")
						if err != nil {
							return err
						}
						if st.Description != "second" {
							return fmt.Errorf("description on the platform is %q", st.Description)
						}
						return nil
					},
				),
			},
			{
				ResourceName:                         addr,
				ImportState:                          true,
				ImportStateId:                        "shop/seed",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "id",
				// Settings for the next version and protection live only in
				// the configuration.
				ImportStateVerifyIgnore: []string{"deletion_protection", "tag", "timeouts"},
			},
			// A grant added outside Terraform shows as drift and is removed.
			{
				PreConfig: func() {
					if _, err := admin.PutGrant(ctx, testProject, "seed", "user:mallory", "owner"); err != nil {
						t.Fatalf("grant behind Terraform's back: %v", err)
					}
				},
				Config: namedStateConfig("seed", "second", second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: checkGrants(admin, "seed", second),
			},
			// Renaming replaces.
			{
				Config: namedStateConfig("seed-v2", "second", second),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: checkGrants(admin, "seed-v2", second),
			},
		},
	})
}

func TestAccNamedStateResource_DeletionProtection(t *testing.T) {
	admin := accPlatform(t)
	const addr = "unikube_named_state.test"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: checkGone("state shop/kept", func() error {
			_, err := admin.GetState(context.Background(), testProject, "kept")
			return err
		}),
		Steps: []resource.TestStep{
			{
				// deletion_protection defaults to true.
				Config: `resource "unikube_named_state" "test" {
  project = "shop"
  name    = "kept"
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("deletion_protection"), knownvalue.Bool(true)),
				},
			},
			// Removing it from the configuration fails at plan time.
			{
				Config:      `# nothing`,
				ExpectError: regexp.MustCompile(`State is protected from deletion`),
			},
			// So does a replacing rename.
			{
				Config: `resource "unikube_named_state" "test" {
  project = "shop"
  name    = "kept-renamed"
}`,
				ExpectError: regexp.MustCompile(`State is protected from deletion`),
			},
			// Turning protection off lets the test's destroy proceed.
			{
				Config: `resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "kept"
  deletion_protection = false
}`,
			},
		},
	})
}

func TestAccNamedStateResource_ValidationIsPlanTime(t *testing.T) {
	accPlatform(t)
	dir := t.TempDir()
	dump := filepath.Join(dir, "db.dump")
	if err := os.WriteFile(dump, []byte("PGDMP"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := func(body string) string {
		return `
resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "check"
  deletion_protection = false
` + body + `
}`
	}
	cases := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown role", state(`access {
  subject = "user:alice"
  role    = "admin"
}`), `(?s)role\s+value\s+must\s+be\s+one\s+of.*"owner"`},
		{"bad subject", state(`access {
  subject = "alice"
  role    = "viewer"
}`), `Invalid grant subject`},
		{"tag selecting an existing version", state(`tag = "@latest"`), `selects an existing version`},
		{"bad tag characters", state(`tag = "v 1"`), `Invalid tag expression`},
		{"unknown component kind", state(`component {
  name = "search"
  kind = "solr"
  source {
    path = "` + dump + `"
  }
}`), `(?s)kind value must be one of`},
		{"duplicate component names", state(`component {
  name = "db"
  kind = "postgres"
  source {
    path = "` + dump + `"
  }
}
component {
  name = "db"
  kind = "volume"
  source {
    path = "` + dir + `"
  }
}`), `Duplicate component name`},
		{"missing source", state(`component {
  name = "db"
  kind = "postgres"
}`), `(?s)source.*required|block.*source`},
		{"path and url together", state(`component {
  name = "db"
  kind = "postgres"
  source {
    path = "` + dump + `"
    url  = "postgres://127.0.0.1/shop"
  }
}`), `Invalid Attribute Combination`},
		{"live url with an unsupported scheme", state(`component {
  name = "db"
  kind = "postgres"
  source {
    url = "ftp://user:hunter2@127.0.0.1/shop"
  }
}`), `(?s)Unsupported endpoint URL scheme.*"ftp"`},
		{"source that does not exist", state(`component {
  name = "db"
  kind = "postgres"
  source {
    path = "` + filepath.Join(dir, "missing.dump") + `"
  }
}`), `Cannot read component source`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				TerraformVersionChecks:   writeOnlyArguments,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}
