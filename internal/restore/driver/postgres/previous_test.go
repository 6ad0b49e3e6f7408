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

// TestPostgres_KeepPreviousBoundsThePreviousCopy: a swap keeps one copy of
// the data it replaced (app_unikube_prev) until the next successful apply;
// keep_previous=0 removes it as soon as the apply succeeded, and an
// in-place apply removes the copy an earlier swap left. A value other than
// 0 or 1 is refused at plan time, naming the option.
func TestPostgres_KeepPreviousBoundsThePreviousCopy(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	for i, db := range []string{"v1", "v2"} {
		src.CreateDatabase(t, db)
		exec1(t, src.URL(db), `CREATE TABLE items (id int PRIMARY KEY)`, `INSERT INTO items SELECT generate_series(1, `+[]string{"10", "20"}[i]+`)`)
	}
	store := drivertest.NewStore(t)
	d := postgres.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v1")}, store, "db")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL("v2")}, store, "db")
	want1, want2 := checksums(t, src.URL("v1")), checksums(t, src.URL("v2"))
	ctx := context.Background()
	target := dst.URL("app")
	const prev = "app_unikube_prev"
	restore := func(t *testing.T, c int, opts map[string]string) driver.ComponentResult {
		t.Helper()
		comp := c1
		if c == 2 {
			comp = c2
		}
		res, err := drivertest.Restore(ctx, d, comp, store, target, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	hasPrev := func() bool { return slices.Contains(databases(t, dst), prev) }

	restore(t, 1, nil)
	if hasPrev() {
		t.Fatalf("a create left %s", prev)
	}
	t.Run("default keeps one copy of the replaced data", func(t *testing.T) {
		res := restore(t, 2, nil)
		if res.Previous != prev || !hasPrev() {
			t.Fatalf("previous %q, databases %v; want %s", res.Previous, databases(t, dst), prev)
		}
		same(t, "previous copy", want1, checksums(t, dst.URL(prev)))
	})
	t.Run("keep_previous=0 removes it once the apply succeeded", func(t *testing.T) {
		res := restore(t, 1, map[string]string{driver.OptKeepPrevious: "0"})
		if res.Previous != "" || hasPrev() {
			t.Fatalf("previous %q, databases %v; want no %s", res.Previous, databases(t, dst), prev)
		}
		same(t, "target", want1, checksums(t, target))
	})
	t.Run("the next apply in place removes an older copy", func(t *testing.T) {
		restore(t, 2, nil)
		if !hasPrev() {
			t.Fatalf("swap left no %s", prev)
		}
		res := restore(t, 1, map[string]string{postgres.OptStrategy: postgres.StrategyInPlace})
		if res.Previous != "" || hasPrev() {
			t.Fatalf("previous %q, databases %v; want no %s", res.Previous, databases(t, dst), prev)
		}
		same(t, "target", want1, checksums(t, target))
	})
	t.Run("a failed apply keeps the copy", func(t *testing.T) {
		restore(t, 2, nil)
		_, err := drivertest.Restore(ctx, d, c1, drivertest.CorruptStore{ChunkStore: store, Digest: c1.Chunks[0].Digest}, target, map[string]string{driver.OptKeepPrevious: "0"})
		if err == nil {
			t.Fatal("restore from a corrupt chunk succeeded")
		}
		if !hasPrev() {
			t.Errorf("a failed apply removed %s", prev)
		}
		same(t, "target", want2, checksums(t, target))
	})
	t.Run("other values are refused at plan time", func(t *testing.T) {
		_, err := d.Plan(ctx, c1, driver.Target{URL: target, Options: map[string]string{driver.OptKeepPrevious: "2"}})
		if err == nil || !strings.Contains(err.Error(), "keep_previous") {
			t.Fatalf("plan with keep_previous=2: %v; want an error naming the option", err)
		}
	})
}
