package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// A database that holds the applied version but whose rows were changed
// by hand since is planned as "changed since apply", naming the tables;
// an untouched one still holds it.
func TestPostgres_PlanSeesTablesChangedSinceApply(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase(t, "shop")
	exec1(t, pg.URL("shop"),
		`CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`CREATE TABLE orders (id int PRIMARY KEY, item int)`,
		`CREATE TABLE empty (id int)`,
		`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g`,
		`INSERT INTO orders SELECT g, g FROM generate_series(1, 300) g`,
	)
	store := drivertest.NewStore(t)
	d := postgres.New()
	c := drivertest.Capture(t, d, driver.Source{URL: pg.URL("shop")}, store, "db")
	ctx := context.Background()
	target := pg.URL("app")
	tgt := driver.Target{URL: target, State: "test/state", Digest: c.Digest}
	apply := func(t *testing.T, opts map[string]string) {
		t.Helper()
		if _, err := drivertest.Restore(ctx, d, c, store, target, opts); err != nil {
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
	holds := func(t *testing.T) driver.ComponentPlan {
		t.Helper()
		pl := plan(t)
		if pl.Action != driver.ActionSkip || pl.Drifted() || pl.Bytes != 0 {
			t.Fatalf("plan %s (%s, %d bytes, changed %v); want skip: the database holds the version untouched", pl.Action, pl.Reason, pl.Bytes, pl.Changed)
		}
		return pl
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

	apply(t, nil)
	t.Run("untouched holds", func(t *testing.T) {
		holds(t)
		// Reading does not count as a change.
		exec1(t, target, `SELECT count(*) FROM items`, `SELECT * FROM orders WHERE id = 3`)
		holds(t)
	})
	t.Run("a hand edit is a change naming the table", func(t *testing.T) {
		exec1(t, target, `UPDATE items SET name = 'edited' WHERE id <= 2`, `INSERT INTO items VALUES (1000, 'new')`)
		changed(t, "public.items: 1 inserted, 2 updated")
	})
	t.Run("the apply that resets it holds again", func(t *testing.T) {
		apply(t, map[string]string{driver.OptStrategy: "swap"}) // the plan said replace
		holds(t)
	})
	t.Run("truncate, delete, create and drop are changes", func(t *testing.T) {
		exec1(t, target, `TRUNCATE orders`, `DELETE FROM items WHERE id = 7`, `CREATE TABLE public.scratch (x int)`, `DROP TABLE empty`)
		changed(t, "public.empty: dropped", "public.items: 1 deleted", "public.orders: truncated or rewritten", "public.scratch: created")
		apply(t, nil)
		holds(t)
	})
	t.Run("in place the marker records the statistics too", func(t *testing.T) {
		apply(t, map[string]string{driver.OptStrategy: "in-place", "drift": "tables"})
		exec1(t, target, `DELETE FROM orders WHERE id > 290`)
		changed(t, "public.orders: 10 deleted")
		apply(t, map[string]string{driver.OptStrategy: "in-place"})
		holds(t)
	})
	t.Run("counters reset since the apply: unseen, and said so", func(t *testing.T) {
		// pg_stat_reset() (or a crash, which loses the statistics) zeroes
		// the counters: what happened before cannot be seen, so the plan
		// keeps the skip and warns; a write after the reset is a change.
		exec1(t, target, `UPDATE items SET name = 'lost' WHERE id = 1`)
		changed(t, "public.items: 1 updated")
		exec1(t, target, `SELECT pg_stat_reset()`)
		pl := holds(t)
		if len(pl.Warnings) != 1 || !strings.Contains(pl.Warnings[0], "public.items") || !strings.Contains(pl.Warnings[0], "reset since the apply") {
			t.Errorf("warnings %q; want one naming public.items as reset", pl.Warnings)
		}
		exec1(t, target, `UPDATE orders SET item = 1 WHERE id = 1`)
		changed(t, "public.orders: 1 updated")
		apply(t, nil)
		holds(t)
	})
	t.Run("drift=off does not look", func(t *testing.T) {
		exec1(t, target, `UPDATE items SET name = 'x' WHERE id = 5`)
		off := tgt
		off.Options = map[string]string{"drift": "off"}
		pl, err := d.Plan(ctx, c, off)
		if err != nil || pl.Action != driver.ActionSkip {
			t.Fatalf("plan %+v, %v; want skip", pl, err)
		}
		off.Options = map[string]string{"drift": "sometimes"}
		if _, err := d.Plan(ctx, c, off); err == nil || !strings.Contains(err.Error(), `drift="sometimes"`) {
			t.Errorf("err %v; want the bad drift option named", err)
		}
	})
}

func TestCompareTableStats(t *testing.T) {
	at := postgres.TableStats{"public.a": {Ins: 10, File: 1}, "public.b": {Ins: 5, File: 2}, "public.c": {File: 3}}
	for _, tc := range []struct {
		name           string
		now            postgres.TableStats
		changed, reset string
	}{
		{"same", postgres.TableStats{"public.a": {Ins: 10, File: 1}, "public.b": {Ins: 5, File: 2}, "public.c": {File: 3}}, "", ""},
		{"reset to zero", postgres.TableStats{"public.a": {File: 1}, "public.b": {File: 2}, "public.c": {File: 3}}, "", "public.a|public.b"},
		{"reset then written", postgres.TableStats{"public.a": {Upd: 1, File: 1}, "public.b": {Ins: 5, File: 2}, "public.c": {File: 3}}, "public.a: 1 updated", ""},
		{"empty table written", postgres.TableStats{"public.a": {Ins: 10, File: 1}, "public.b": {Ins: 5, File: 2}, "public.c": {Ins: 2, Del: 2, File: 3}}, "public.c: 2 inserted, 2 deleted", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := postgres.CompareTableStats(at, tc.now)
			if got := strings.Join(d.Changed, "|"); got != tc.changed {
				t.Errorf("changed %q; want %q", got, tc.changed)
			}
			if got := strings.Join(d.Reset, "|"); got != tc.reset {
				t.Errorf("reset %q; want %q", got, tc.reset)
			}
		})
	}
}
