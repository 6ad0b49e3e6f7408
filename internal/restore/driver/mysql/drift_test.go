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

// A schema that holds the applied version but whose rows were changed by
// hand since is planned as "changed since apply", naming the tables; an
// untouched one still holds it.
func TestMySQL_PlanSeesTablesChangedSinceApply(t *testing.T) {
	m := testenv.StartMariaDB(t)
	seed(t, m, "shop", 1)
	store := drivertest.NewStore(t)
	d := mysql.New()
	c := drivertest.Capture(t, d, driver.Source{URL: m.URL("shop")}, store, "db")
	ctx := context.Background()
	target := m.URL("app")
	tgt := driver.Target{URL: target, State: "test/state", Digest: c.Digest}
	app := open(t, m, "app")
	exec := func(t *testing.T, qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := app.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	apply := func(t *testing.T) {
		t.Helper()
		if _, err := drivertest.Restore(ctx, d, c, store, target, nil); err != nil {
			t.Fatal(err)
		}
	}
	plan := func(t *testing.T) driver.ComponentPlan {
		t.Helper()
		pl, err := d.Plan(ctx, c, tgt)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	holds := func(t *testing.T) {
		t.Helper()
		if pl := plan(t); pl.Action != driver.ActionSkip || pl.Drifted() || pl.Bytes != 0 {
			t.Fatalf("plan %s (%s, %d bytes, changed %v); want skip: the schema holds the version untouched", pl.Action, pl.Reason, pl.Bytes, pl.Changed)
		}
	}
	changed := func(t *testing.T, want ...string) {
		t.Helper()
		pl := plan(t)
		if pl.Action != driver.ActionReplace || !pl.Drifted() || pl.Bytes != c.Size {
			t.Fatalf("plan %s (%s, %d bytes); want replace, changed since apply, %d bytes", pl.Action, pl.Reason, pl.Bytes, c.Size)
		}
		if strings.Join(pl.Changed, "|") != strings.Join(want, "|") {
			t.Errorf("changed %q; want %q", pl.Changed, want)
		}
	}

	apply(t)
	t.Run("untouched holds", func(t *testing.T) {
		holds(t)
		exec(t, "SELECT COUNT(*) FROM items")
		holds(t)
	})
	t.Run("a hand edit is a change naming the table", func(t *testing.T) {
		exec(t, "UPDATE items SET name = 'edited' WHERE id = 2")
		changed(t, "items: rows changed")
	})
	t.Run("an edit undone is no change", func(t *testing.T) {
		// The checksum is of the rows: they are as applied again.
		exec(t, "UPDATE items SET name = (SELECT CONCAT('item-1-2', REPEAT('x', 50))) WHERE id = 2")
		holds(t)
	})
	t.Run("truncate, create and drop are changes", func(t *testing.T) {
		exec(t, "DELETE FROM audit", "TRUNCATE orders", "CREATE TABLE scratch (x int)", "DROP TABLE audit")
		changed(t, "audit: dropped", "orders: rows changed", "scratch: created")
	})
	t.Run("the apply that resets it holds again", func(t *testing.T) {
		apply(t)
		holds(t)
	})
	t.Run("drift=off does not look", func(t *testing.T) {
		exec(t, "DELETE FROM orders WHERE id = 1")
		off := tgt
		off.Options = map[string]string{"drift": "off"}
		if pl, err := d.Plan(ctx, c, off); err != nil || pl.Action != driver.ActionSkip {
			t.Fatalf("plan %+v, %v; want skip", pl, err)
		}
		off.Options = map[string]string{"drift": "tables"}
		if _, err := d.Plan(ctx, c, off); err == nil || !strings.Contains(err.Error(), `drift="tables"`) {
			t.Errorf("err %v; want the bad drift option named", err)
		}
	})
}
