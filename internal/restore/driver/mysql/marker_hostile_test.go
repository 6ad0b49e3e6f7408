package mysql_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/mysql"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Whoever can write to the target schema can write its marker: a plan
// must not load checksums of any size into memory. Far more than an apply
// writes is not trusted: the plan replaces the schema.
func TestMySQL_PlanDoesNotLoadAHugeMarker(t *testing.T) {
	m := testenv.StartMariaDB(t)
	seed(t, m, "shop", 1)
	store := drivertest.NewStore(t)
	d := mysql.New()
	c := drivertest.Capture(t, d, driver.Source{URL: m.URL("shop")}, store, "db")
	ctx := context.Background()
	target := m.URL("app")
	if _, err := drivertest.Restore(ctx, d, c, store, target, nil); err != nil {
		t.Fatal(err)
	}
	app := open(t, m, "app")
	// About 12 MB of checksums of tables that do not exist (within
	// MariaDB's default 16 MiB packet).
	if _, err := app.Exec("UPDATE unikube_state SET `tables` = CONCAT('{', REPEAT('\"t_____________________\":123456789012,', 300000), '\"t\":1}')"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pl, err := d.Plan(ctx, c, driver.Target{URL: target, State: "test/state", Digest: c.Digest})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("planning against a 12 MB marker allocated %d MiB; want the marker refused unread", alloc>>20)
	}
	if pl.Action != driver.ActionReplace {
		t.Errorf("plan %s (%s); want replace: a marker that size was not written by an apply", pl.Action, pl.Reason)
	}
}
