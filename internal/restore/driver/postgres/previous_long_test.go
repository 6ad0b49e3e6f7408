package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestPostgres_PreviousCopyOfALongNameIsItsOwn: names are at most 63
// bytes, so the previous copy of a long database name is cut short; two
// databases whose names differ only past the cut must still get copies of
// their own, or an apply to one drops the other's previous data.
func TestPostgres_PreviousCopyOfALongNameIsItsOwn(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	for i, db := range []string{"v1", "v2"} {
		src.CreateDatabase(t, db)
		exec1(t, src.URL(db), `CREATE TABLE items (id int PRIMARY KEY)`, `INSERT INTO items SELECT generate_series(1, `+[]string{"10", "20"}[i]+`)`)
	}
	store := drivertest.NewStore(t)
	d := postgres.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v1")}, store, "db")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v2")}, store, "db")
	want1 := checksums(t, src.URL("v1"))
	ctx := context.Background()
	prefix := strings.Repeat("x", 52)
	one, two := prefix+"_one", prefix+"_two"
	if _, err := drivertest.Restore(ctx, d, c1, store, dst.URL(two), nil); err != nil {
		t.Fatal(err)
	}
	res, err := drivertest.Restore(ctx, d, c2, store, dst.URL(two), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous == "" || !slices.Contains(databases(t, dst), res.Previous) {
		t.Fatalf("the swap of %s kept no previous copy (%q): %v", two, res.Previous, databases(t, dst))
	}
	prevTwo := res.Previous
	if _, err := drivertest.Restore(ctx, d, c2, store, dst.URL(one), nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(databases(t, dst), prevTwo) {
		t.Fatalf("applying to %s dropped %s, the previous copy of %s: %v", one, prevTwo, two, databases(t, dst))
	}
	same(t, "previous copy of "+two, want1, checksums(t, dst.URL(prevTwo)))
	for _, db := range []string{one, two} {
		if _, err := d.Plan(ctx, c2, driver.Target{URL: dst.URL(db)}); err != nil {
			t.Fatalf("plan %s: %v", db, err)
		}
	}
}
