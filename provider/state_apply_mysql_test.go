package provider

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql" // database/sql driver for the check
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestAccStateApplyResource_MySQLTarget: a state made from a MySQL dump is
// applied to a real MariaDB, and the MariaDB password stays out of plan and
// state.
func TestAccStateApplyResource_MySQLTarget(t *testing.T) {
	accPlatform(t)
	db := testenv.StartMariaDB(t)
	dump := filepath.Join(t.TempDir(), "shop.sql")
	writeFile(t, dump, "CREATE TABLE orders (id INT PRIMARY KEY);\nINSERT INTO orders VALUES (1), (2), (3);\n")
	config := fmt.Sprintf(`
resource "unikube_named_state" "seed" {
  project             = "shop"
  name                = "orders"
  deletion_protection = false

  component {
    name = "orders"
    kind = "mysql"
    source {
      path = %q
    }
  }
}

resource "unikube_state_apply" "dev" {
  state = "shop/orders@${unikube_named_state.seed.version_digest}"

  endpoint {
    component = "orders"
    url       = %q
  }
}
`, dump, db.URL("shop"))

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   writeOnlyArguments,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{expectNoSecretInPlan(db.Password)},
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				checkNoSecretInState(db.Password),
				func(*terraform.State) error {
					conn, err := sql.Open("mysql", db.DSN("shop"))
					if err != nil {
						return err
					}
					defer conn.Close()
					var n int
					if err := conn.QueryRowContext(context.Background(), "SELECT count(*) FROM orders").Scan(&n); err != nil {
						return fmt.Errorf("count orders: %w", err)
					}
					if n != 3 {
						return fmt.Errorf("target has %d orders, want 3", n)
					}
					return nil
				},
			),
		}},
	})
}
