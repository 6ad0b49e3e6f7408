package postgres_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Whoever can write to the target database can write its marker
// (public.unikube_state): a plan must not load a marker of any size into
// memory. One far larger than any real one (its tables' statistics run to
// tens of bytes a table) is not trusted: the plan replaces the database.
func TestPostgres_PlanDoesNotLoadAHugeMarker(t *testing.T) {
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase(t, "shop")
	exec1(t, pg.URL("shop"), `CREATE TABLE items (id int PRIMARY KEY)`, `INSERT INTO items SELECT generate_series(1, 10)`)
	store := drivertest.NewStore(t)
	d := postgres.New()
	c := drivertest.Capture(t, d, driver.Source{URL: pg.URL("shop")}, store, "db")
	ctx := context.Background()
	target := pg.URL("app")
	if _, err := drivertest.Restore(ctx, d, c, store, target, nil); err != nil {
		t.Fatal(err)
	}
	// About 40 MB of statistics for 800,000 tables that do not exist.
	exec1(t, target, `UPDATE public.unikube_state SET tables = (SELECT jsonb_object_agg('public.t' || g, '{"i":1,"u":2,"d":3,"f":4}'::jsonb) FROM generate_series(1, 800000) g)`)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pl, err := d.Plan(ctx, c, driver.Target{URL: target, State: "test/state", Digest: c.Digest})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("planning against a 40 MB marker allocated %d MiB; want the marker refused unread", alloc>>20)
	}
	if pl.Action != driver.ActionReplace {
		t.Errorf("plan %s (%s); want replace: a marker that size was not written by an apply", pl.Action, pl.Reason)
	}
}
