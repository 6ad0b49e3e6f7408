package mysql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/mysql"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestMySQL_KeepPreviousBoundsThePreviousCopy: the swap keeps the replaced
// tables in app_unikube_prev until the next apply (which replaces them);
// keep_previous=0 drops that schema once the apply succeeded. A value other
// than 0 or 1 is refused at plan time, naming the option.
func TestMySQL_KeepPreviousBoundsThePreviousCopy(t *testing.T) {
	src, dst := testenv.StartMariaDB(t), testenv.StartMariaDB(t)
	for db, n := range map[string]string{"v1": "10", "v2": "20"} {
		src.CreateDatabase(t, db)
		for _, q := range []string{"CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items SELECT seq FROM seq_1_to_" + n} {
			if _, err := open(t, src, db).Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	store := drivertest.NewStore(t)
	d := mysql.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v1")}, store, "db")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v2")}, store, "db")
	want1 := checksums(t, src, "v1")
	ctx := context.Background()
	target := dst.URL("app")
	const prev = "app_unikube_prev"
	hasPrev := func() bool { return strings.Contains(","+schemas(t, dst)+",", ","+prev+",") }

	if _, err := drivertest.Restore(ctx, d, c1, store, target, nil); err != nil {
		t.Fatal(err)
	}
	res, err := drivertest.Restore(ctx, d, c2, store, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous != prev || !hasPrev() {
		t.Fatalf("default: previous %q, schemas %s; want %s kept", res.Previous, schemas(t, dst), prev)
	}
	same(t, "previous tables", want1, checksums(t, dst, prev))

	res, err = drivertest.Restore(ctx, d, c1, store, target, map[string]string{driver.OptKeepPrevious: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous != "" || hasPrev() {
		t.Fatalf("keep_previous=0: previous %q, schemas %s; want no %s", res.Previous, schemas(t, dst), prev)
	}
	same(t, "target", want1, checksums(t, dst, "app"))

	if _, err := d.Plan(ctx, c1, driver.Target{URL: target, Options: map[string]string{driver.OptKeepPrevious: "all"}}); err == nil || !strings.Contains(err.Error(), "keep_previous") {
		t.Fatalf("plan with keep_previous=all: %v; want an error naming the option", err)
	}
}
