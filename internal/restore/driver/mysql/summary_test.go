package mysql_test

import (
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/mysql"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// A capture records each table's rows, size and digest and the schema;
// changing prices changes the items table's digest only, and the schema
// not at all (AUTO_INCREMENT and dump dates are left out of it).
func TestMySQL_CaptureRecordsTablesAndSchema(t *testing.T) {
	src := testenv.StartMariaDB(t)
	seed(t, src, "shop", 1)
	d := open(t, src, "shop")
	if _, err := d.Exec("INSERT INTO items (name, price) VALUES ('it''s (odd), isn''t it', 1)"); err != nil {
		t.Fatal(err)
	}
	store := drivertest.NewStore(t)
	summary := func() statepkg.Summary {
		c := drivertest.Capture(t, mysql.New(), driver.Source{URL: src.URL("shop")}, store, "db")
		s, ok, err := statepkg.ComponentSummary(&c)
		if err != nil || !ok {
			t.Fatalf("summary: %v %v", ok, err)
		}
		return s
	}
	s1 := summary()
	rows := map[string]int64{}
	for _, tb := range s1.Tables {
		rows[tb.Name] = tb.Rows
	}
	if rows["items"] != 20001 || rows["orders"] != 10000 || rows["audit"] != 10000 {
		t.Fatalf("rows = %v", rows)
	}
	if _, err := d.Exec("UPDATE items SET price = price * 2"); err != nil {
		t.Fatal(err)
	}
	s2 := summary()
	if s1.SchemaDigest != s2.SchemaDigest {
		t.Errorf("schema changed:\n%s\n---\n%s", s1.Schema, s2.Schema)
	}
	for i, tb := range s2.Tables {
		if changed := tb.Digest != s1.Tables[i].Digest; changed != (tb.Name == "items") {
			t.Errorf("table %s changed = %v", tb.Name, changed)
		}
	}
}
