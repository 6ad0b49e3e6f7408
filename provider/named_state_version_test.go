package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func versionedStateConfig(dump, dir, description, tag string) string {
	return fmt.Sprintf(`
resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "seed"
  description         = %[3]q
  deletion_protection = false
  tag                 = %[4]q
  revision            = "1.0.0"
  message             = "from the acceptance test"

  component {
    name = "db"
    kind = "postgres"
    source {
      path = %[1]q
    }
  }

  component {
    name = "uploads"
    kind = "volume"
    source {
      path = %[2]q
    }
  }
}
`, dump, dir, description, tag)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkVersionCount(c *client.Client, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		vs, err := c.ListVersions(context.Background(), testProject, "seed", client.ListVersionsOptions{})
		if err != nil {
			return err
		}
		if len(vs) != want {
			return fmt.Errorf("shop/seed has %d versions, want %d", len(vs), want)
		}
		return nil
	}
}

// TestAccNamedStateResource_VersionsFollowSources: a version is made from
// the sources on create, an unchanged source plans nothing, a changed file
// plans and makes a new version, changes to settings alone make none, and a
// version deleted behind Terraform's back is made again.
func TestAccNamedStateResource_VersionsFollowSources(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_named_state.test"
	src := t.TempDir()
	dump, dir := filepath.Join(src, "seed.sql"), filepath.Join(src, "uploads")
	writeFile(t, dump, "CREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1);\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha")
	writeFile(t, filepath.Join(dir, "img", "logo.svg"), "<svg/>")

	digests := statecheck.CompareValue(compare.ValuesDiffer())

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: checkGone("state shop/seed", func() error {
			_, err := admin.GetState(ctx, testProject, "seed")
			return err
		}),
		Steps: []resource.TestStep{
			{
				Config: versionedStateConfig(dump, dir, "first", "v1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("version_tag"), knownvalue.StringExact("v1")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("version_digest"), knownvalue.StringRegexp(digestPattern)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("content_hash"), knownvalue.StringRegexp(digestPattern)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("size"), knownvalue.NotNull()),
					digests.AddStateValue(addr, tfjsonpath.New("version_digest")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkVersionCount(admin, 1),
					func(*terraform.State) error {
						v, err := admin.GetVersion(ctx, testProject, "seed", "v1")
						if err != nil {
							return err
						}
						if len(v.Components) != 2 || v.Components[0].Kind != "postgres" || v.Components[1].Kind != "volume" || v.Revision != "1.0.0" {
							return fmt.Errorf("version v1 on the platform: %+v", v)
						}
						return nil
					},
				),
			},
			// Settings for the next version change in place and make none.
			{
				Config: versionedStateConfig(dump, dir, "second", "v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("version_tag"), knownvalue.StringExact("v1")),
					},
				},
				Check: checkVersionCount(admin, 1),
			},
			// A changed file plans a new version.
			{
				PreConfig: func() { writeFile(t, filepath.Join(dir, "a.txt"), "alpha, edited") },
				Config:    versionedStateConfig(dump, dir, "second", "v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("version_digest")),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("version_tag"), knownvalue.StringExact("v2")),
					digests.AddStateValue(addr, tfjsonpath.New("version_digest")),
				},
				Check: checkVersionCount(admin, 2),
			},
			// Deleted on the platform, the version is made again.
			{
				PreConfig: func() {
					if err := admin.DeleteVersion(ctx, testProject, "seed", "v2"); err != nil {
						t.Fatalf("delete version behind Terraform's back: %v", err)
					}
				},
				Config: versionedStateConfig(dump, dir, "second", "v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectUnknownValue(addr, tfjsonpath.New("version_digest"))},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("version_tag"), knownvalue.StringExact("v2")),
				},
				Check: checkVersionCount(admin, 2),
			},
		},
	})
}

// TestAccNamedStateResource_SourcePathKnownOnlyAtApply: a path computed by
// another resource is hashed and captured at apply time, and the next plan
// is empty.
func TestAccNamedStateResource_SourcePathKnownOnlyAtApply(t *testing.T) {
	admin := accPlatform(t)
	dump := filepath.Join(t.TempDir(), "seed.sql")
	writeFile(t, dump, "CREATE TABLE t (id int);\n")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
resource "terraform_data" "dump" {
  input = %q
}

resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "seed"
  deletion_protection = false

  component {
    name = "db"
    kind = "postgres"
    source {
      path = terraform_data.dump.output
    }
  }
}
`, dump),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{plancheck.ExpectUnknownValue("unikube_named_state.test", tfjsonpath.New("content_hash"))},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("unikube_named_state.test", tfjsonpath.New("content_hash"), knownvalue.StringRegexp(digestPattern)),
			},
			Check: checkVersionCount(admin, 1),
		}},
	})
}

// TestAccNamedStateResource_LiveSourceCapturedOnTrigger: a live PostgreSQL
// source is dumped on create, not again while nothing changes, and again
// when capture_trigger changes; its URL (with the password) stays out of
// plan and state.
func TestAccNamedStateResource_LiveSourceCapturedOnTrigger(t *testing.T) {
	admin := accPlatform(t)
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase(t, "live")
	conn, err := pgx.Connect(t.Context(), pg.URL("live"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "CREATE TABLE customers (id int); INSERT INTO customers VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	config := func(trigger string) string {
		return fmt.Sprintf(`
resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "seed"
  deletion_protection = false
  capture_trigger     = %q

  component {
    name = "db"
    kind = "postgres"
    source {
      url = %q
    }
  }
}
`, trigger, pg.URL("live"))
	}
	const addr = "unikube_named_state.test"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   writeOnlyArguments,
		Steps: []resource.TestStep{
			{
				Config: config("day-1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectNoSecretInPlan(pg.Password)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkVersionCount(admin, 1),
					checkNoSecretInState(pg.Password),
				),
			},
			{
				Config: config("day-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("version_digest")),
					},
				},
				Check: checkVersionCount(admin, 2),
			},
		},
	})
}
