package provider

import (
	"context"
	"fmt"
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

// refApplyConfig wires the apply to the named state the way the docs do:
// state = unikube_named_state.seed.ref.
func refApplyConfig(dump, pgURL, keepPrevious string) string {
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

  endpoint {
    component = "db"
    url       = %[2]q
    options   = { keep_previous = %[3]q }
  }
}
`, dump, pgURL, keepPrevious)
}

// checkDatabase checks whether the server at url (any database of it) has
// database db.
func checkDatabase(url, db string, want bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n); err != nil {
			return err
		}
		if (n == 1) != want {
			return fmt.Errorf("database %s exists: %v, want %v", db, n == 1, want)
		}
		return nil
	}
}

// TestAccStateApplyResource_RefLandsANewVersionInOneApply: with state =
// unikube_named_state.seed.ref, one terraform apply that changes the seed
// file makes the new version and restores it (the plan shows ref and the
// digest as known after apply), and the next plan is empty. -replace (a
// taint) restores again although the marker matches, resetting a dirtied
// database; keep_previous = "0" leaves no shop_unikube_prev behind.
// Importing the named state with unchanged sources plans no new version.
func TestAccStateApplyResource_RefLandsANewVersionInOneApply(t *testing.T) {
	accPlatform(t)
	pg := testenv.StartPostgres(t)
	pgURL := pg.URL("shop")
	dump := filepath.Join(t.TempDir(), "seed.sql")
	writeFile(t, dump, "CREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1), (2);\n")
	const addr, seed = "unikube_state_apply.dev", "unikube_named_state.seed"
	refPattern := regexp.MustCompile(`^shop/seed@sha256:[0-9a-f]{64}$`)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   writeOnlyArguments,
		Steps: []resource.TestStep{
			{
				Config: refApplyConfig(dump, pgURL, "1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(seed, tfjsonpath.New("ref"), knownvalue.StringRegexp(refPattern)),
					statecheck.CompareValuePairs(seed, tfjsonpath.New("ref"), addr, tfjsonpath.New("state"), compareRefAndState{}),
				},
				Check: checkRows(pgURL, 2),
			},
			{
				// One apply: the new version is made and restored.
				PreConfig: func() {
					writeFile(t, dump, "CREATE TABLE customers (id int);\nINSERT INTO customers VALUES (1), (2), (3);\n")
				},
				Config: refApplyConfig(dump, pgURL, "1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(seed, plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue(seed, tfjsonpath.New("ref")),
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue(addr, tfjsonpath.New("digest")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(seed, tfjsonpath.New("ref"), addr, tfjsonpath.New("state"), compareRefAndState{}),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkRows(pgURL, 3), checkDatabase(pgURL, "shop_unikube_prev", true)),
			},
			{
				// A second plan has nothing to do.
				Config: refApplyConfig(dump, pgURL, "1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A test run dirties the database; -replace resets it. With
				// keep_previous = "0" no previous copy stays.
				PreConfig: func() {
					execSQL(t, pgURL, "INSERT INTO customers VALUES (99)")
				},
				Taint:  []string{addr},
				Config: refApplyConfig(dump, pgURL, "0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("results"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"component": knownvalue.StringExact("db"), "action": knownvalue.StringExact("replace")}),
					})),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkRows(pgURL, 3), checkDatabase(pgURL, "shop_unikube_prev", false)),
			},
			{
				// Importing the named state (an import block, planned): its
				// newest version was made from these sources, so the plan
				// makes no new version. (deletion_protection is imported as
				// true, the configuration says false: that is the one change.)
				Config:             refApplyConfig(dump, pgURL, "0"),
				ResourceName:       seed,
				ImportState:        true,
				ImportStateKind:    resource.ImportBlockWithID,
				ImportStateId:      "shop/seed",
				ExpectNonEmptyPlan: true,
				ImportPlanChecks: resource.ImportPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(seed, tfjsonpath.New("version_digest"), knownvalue.StringRegexp(digestPattern)),
						plancheck.ExpectKnownValue(seed, tfjsonpath.New("ref"), knownvalue.StringRegexp(refPattern)),
						plancheck.ExpectKnownValue(seed, tfjsonpath.New("deletion_protection"), knownvalue.Bool(false)),
					},
				},
			},
		},
	})
}

// compareRefAndState checks that the apply's state is the named state's
// ref.
type compareRefAndState struct{}

func (compareRefAndState) CompareValues(values ...any) error {
	if len(values) != 2 || values[0] != values[1] {
		return fmt.Errorf("unikube_state_apply.state %v is not unikube_named_state.ref %v", values[1:], values[0])
	}
	return nil
}

func execSQL(t *testing.T, url, query string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
