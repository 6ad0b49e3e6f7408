package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func seedAndApplyConfig(dump, dir, pgURL, target, strategy string) string {
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

  component {
    name = "files"
    kind = "volume"
    source {
      path = %[2]q
    }
  }
}

resource "unikube_state_apply" "dev" {
  state    = "shop/seed@${unikube_named_state.seed.version_digest}"
  strategy = %[5]q

  endpoint {
    component = "db"
    url       = %[3]q
  }

  endpoint {
    component = "files"
    url       = "file://%[4]s"
  }
}
`, dump, dir, pgURL, target, strategy)
}

// checkRows checks the number of customers in the restored database.
func checkRows(url string, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return fmt.Errorf("connect to the target: %w", err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil {
			return fmt.Errorf("count customers: %w", err)
		}
		if n != want {
			return fmt.Errorf("target has %d customers, want %d", n, want)
		}
		return nil
	}
}

func checkFileContent(p, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("%s holds %q, want %q", p, b, want)
		}
		return nil
	}
}

// TestAccStateApplyResource_EndToEnd: a state made from a SQL dump and a
// directory is applied to a real PostgreSQL and a directory; a changed
// source plans a new version and a re-apply; a wiped target shows as drift
// and is restored; the database password never reaches the state.
func TestAccStateApplyResource_EndToEnd(t *testing.T) {
	accPlatform(t)
	pg := testenv.StartPostgres(t)
	pgURL := pg.URL("shop")
	src, target := t.TempDir(), filepath.Join(t.TempDir(), "files")
	dump, dir := filepath.Join(src, "seed.sql"), filepath.Join(src, "files")
	writeFile(t, dump, "CREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1), (2);\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha")
	config := seedAndApplyConfig(dump, dir, pgURL, target, "swap")
	const addr = "unikube_state_apply.dev"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   writeOnlyArguments,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectNoSecretInPlan(pg.Password)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("digest"), knownvalue.StringRegexp(digestPattern)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restore_plan"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"component": knownvalue.StringExact("db"), "action": knownvalue.StringExact("create")}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"component": knownvalue.StringExact("files"), "action": knownvalue.StringExact("create")}),
					})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("applied_at"), knownvalue.NotNull()),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRows(pgURL, 2),
					checkFileContent(filepath.Join(target, "a.txt"), "alpha"),
					checkNoSecretInState(pg.Password),
				),
			},
			// A changed source: a new version, and the apply follows it.
			{
				PreConfig: func() {
					writeFile(t, dump, "CREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1), (2), (3);\n")
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("unikube_named_state.seed", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("digest")),
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRows(pgURL, 3),
					checkFileContent(filepath.Join(target, "a.txt"), "alpha"),
				),
			},
			// Someone wipes the directory: the plan shows the drift and what
			// the apply will do about it, and the apply restores it.
			{
				PreConfig: func() {
					if err := os.RemoveAll(target); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("unikube_named_state.seed", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("restore_plan"), knownvalue.ListExact([]knownvalue.Check{
							knownvalue.ObjectPartial(map[string]knownvalue.Check{"component": knownvalue.StringExact("db"), "action": knownvalue.StringExact("skip")}),
							knownvalue.ObjectPartial(map[string]knownvalue.Check{"component": knownvalue.StringExact("files"), "action": knownvalue.StringExact("create")}),
						})),
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRows(pgURL, 3),
					checkFileContent(filepath.Join(target, "a.txt"), "alpha"),
					checkNoSecretInState(pg.Password),
				),
			},
			// The in-place strategy reaches the driver: the plan says so.
			{
				PreConfig: func() {
					// In place, a plain SQL dump runs over the old tables: it drops them itself.
					writeFile(t, dump, "DROP TABLE IF EXISTS customers;\nCREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1), (2), (3), (4);\n")
				},
				Config: seedAndApplyConfig(dump, dir, pgURL, target, "in-place"),
				Check:  checkRows(pgURL, 4),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restore_plan"), knownvalue.ListPartial(map[int]knownvalue.Check{
						0: knownvalue.ObjectPartial(map[string]knownvalue.Check{"action": knownvalue.StringExact("replace"), "strategy": knownvalue.StringExact("in-place")}),
					})),
				},
			},
			// Import by the reference the apply uses.
			{
				ResourceName: addr,
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources[addr].Primary.Attributes["state"], nil
				},
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["id"] != "shop/seed" || !regexp.MustCompile(`^shop/seed@sha256:`).MatchString(states[0].Attributes["state"]) {
						return fmt.Errorf("imported %+v", states)
					}
					return nil
				},
			},
		},
	})
}

func TestAccStateApplyResource_ValidationIsPlanTime(t *testing.T) {
	accPlatform(t)
	apply := func(state, url string) string {
		return fmt.Sprintf(`
resource "unikube_state_apply" "test" {
  state = %q
  endpoint {
    component = "db"
    url       = %q
  }
}`, state, url)
	}
	cases := []struct {
		name, config, want string
	}{
		{"invalid reference", apply("seed", "postgres://127.0.0.1/shop"), `Invalid state reference`},
		{"write-only tag expression", apply("shop/seed:@random", "postgres://127.0.0.1/shop"), `only names a version to be created`},
		{"unsupported endpoint scheme", apply("shop/seed", "ftp://user:hunter2@example.com/"), `(?s)Unsupported endpoint URL scheme.*"ftp"`},
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
