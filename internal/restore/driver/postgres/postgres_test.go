package postgres_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func exec1(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// seed fills db with tables, an index, a view, a sequence and a function;
// version changes the data.
func seed(t testing.TB, pg *testenv.Postgres, db string, version int) {
	t.Helper()
	pg.CreateDatabase(t, db)
	exec1(t, pg.URL(db),
		`CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], created timestamptz DEFAULT '2024-01-01')`,
		`CREATE INDEX items_name ON items (name)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, item int REFERENCES items(id), qty int, note jsonb)`,
		`CREATE VIEW expensive AS SELECT * FROM items WHERE price > 50`,
		`CREATE FUNCTION total(i int) RETURNS numeric LANGUAGE sql AS 'SELECT sum(qty) FROM orders WHERE item = i'`,
		fmt.Sprintf(`INSERT INTO items (name, price, tags) SELECT 'item-%d-' || g || repeat('x', 60), g %% 100, ARRAY['a', 'v%d'] FROM generate_series(1, 60000) g`, version, version),
		fmt.Sprintf(`INSERT INTO orders SELECT g, 1 + g %% 60000, g %% 7 + %d, jsonb_build_object('g', g) FROM generate_series(1, 40000) g`, version),
	)
}

// checksums returns row count and md5 of every table, excluding the marker.
func checksums(t testing.TB, url string) map[string]string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'unikube_state' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var n int64
		var sum string
		q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM %s t`, pgx.Identifier{tb}.Sanitize())
		if err := c.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		out[tb] = fmt.Sprintf("%d rows %s", n, sum)
	}
	var views int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_views WHERE schemaname='public'`).Scan(&views); err != nil {
		t.Fatal(err)
	}
	out["#views"] = fmt.Sprint(views)
	return out
}

func databases(t testing.TB, pg *testenv.Postgres) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, _ := c.Query(ctx, `SELECT datname FROM pg_database ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func same(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("%s differs:\nwant %v\ngot  %v", what, want, got)
	}
}

func TestPostgres_CaptureRestoreSwapAndIdempotency(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	seed(t, src, "shop", 1)
	seed(t, src, "shop2", 2)
	store := drivertest.NewStore(t)
	d := postgres.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL("shop")}, store, "db")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL("shop2")}, store, "db")
	if c1.Format != postgres.FormatCustom || c1.Meta["serverVersion"] == "" {
		t.Fatalf("capture: format %q meta %v", c1.Format, c1.Meta)
	}
	want1, want2 := checksums(t, src.URL("shop")), checksums(t, src.URL("shop2"))
	ctx := context.Background()
	target := dst.URL("app")

	t.Run("create on an empty server", func(t *testing.T) {
		pl, err := d.Plan(ctx, c1, driver.Target{URL: target})
		if err != nil || pl.Action != driver.ActionCreate {
			t.Fatalf("plan %+v, %v", pl, err)
		}
		var mu sync.Mutex
		var rows int64
		res, err := d.Restore(ctx, c1, driver.StoreSource{Store: store, Component: c1}, driver.Target{URL: target, State: "test/state", Digest: c1.Digest}, func(e driver.Event) {
			mu.Lock()
			rows += e.Rows
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "restored db", want1, checksums(t, target))
		// Progress counts rows from the server's statistics.
		if res.Rows != 100000 || rows != res.Rows {
			t.Errorf("rows: result %d, progress %d; want 100000 (60,000 items + 40,000 orders)", res.Rows, rows)
		}
	})
	t.Run("same digest again is a no-op", func(t *testing.T) {
		cs := &drivertest.CountingStore{ChunkStore: store}
		res, err := drivertest.Restore(ctx, d, c1, cs, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Action != driver.ActionSkip || cs.Gets.Load() != 0 {
			t.Errorf("action %s, %d chunks fetched; want skip, 0", res.Action, cs.Gets.Load())
		}
	})
	t.Run("swap keeps the previous database", func(t *testing.T) {
		// A client holding a connection must not block the swap.
		held, err := pgx.Connect(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close(ctx)
		res, err := drivertest.Restore(ctx, d, c2, store, target, map[string]string{postgres.OptJobs: "2"})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "swapped db", want2, checksums(t, target))
		same(t, "previous db", want1, checksums(t, dst.URL(res.Previous)))
		m, err := postgres.ReadMarker(ctx, target)
		if err != nil || m == nil || m.ComponentDigest != c2.Digest || m.State != "test/state" {
			t.Errorf("marker %+v, %v", m, err)
		}
	})
	t.Run("one job streams the archive into pg_restore", func(t *testing.T) {
		if _, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{postgres.OptJobs: "1"}); err != nil {
			t.Fatal(err)
		}
		same(t, "streamed db", want1, checksums(t, target))
		if _, err := drivertest.Restore(ctx, d, c2, store, target, map[string]string{postgres.OptJobs: "1"}); err != nil {
			t.Fatal(err)
		}
		same(t, "streamed db", want2, checksums(t, target))
	})
	t.Run("restore settings reach the restoring sessions", func(t *testing.T) {
		// A setting the server rejects fails the restore, which shows the
		// settings are passed; the target keeps its data.
		before := checksums(t, target)
		for _, jobs := range []string{"1", "2"} {
			_, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{postgres.OptJobs: jobs, postgres.OptSettings: "work_mem=lots"})
			if err == nil || !strings.Contains(err.Error(), "work_mem") {
				t.Fatalf("jobs=%s: restore with work_mem=lots: %v, want the server's complaint", jobs, err)
			}
		}
		if _, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{postgres.OptSettings: "synchronous_commit"}); err == nil || !strings.Contains(err.Error(), "name=value") {
			t.Fatalf("malformed settings: %v, want an error saying name=value", err)
		}
		same(t, "db after failed restores", before, checksums(t, target))
		if _, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{postgres.OptSettings: "none"}); err != nil {
			t.Fatal(err)
		}
		same(t, "db restored without settings", want1, checksums(t, target))
	})
	t.Run("in-place strategy", func(t *testing.T) {
		if _, err := drivertest.Restore(ctx, d, c1, store, target, map[string]string{postgres.OptStrategy: postgres.StrategyInPlace}); err != nil {
			t.Fatal(err)
		}
		same(t, "in-place db", want1, checksums(t, target))
	})

	// Failures: the target holds c1's data; applying c2 fails.
	failures := []struct {
		name string
		run  func(t *testing.T) error
	}{
		{"corrupt chunk", func(t *testing.T) error {
			_, err := drivertest.Restore(ctx, d, c2, drivertest.CorruptStore{ChunkStore: store, Digest: c2.Chunks[len(c2.Chunks)/2].Digest}, target, nil)
			return err
		}},
		{"corrupt chunk, archive staged first (data_load=pg_restore)", func(t *testing.T) error {
			_, err := drivertest.Restore(ctx, d, c2, drivertest.CorruptStore{ChunkStore: store, Digest: c2.Chunks[len(c2.Chunks)/2].Digest}, target, map[string]string{postgres.OptDataLoad: postgres.DataLoadPgRestore})
			return err
		}},
		{"corrupt chunk while streaming", func(t *testing.T) error {
			_, err := drivertest.Restore(ctx, d, c2, drivertest.CorruptStore{ChunkStore: store, Digest: c2.Chunks[len(c2.Chunks)/2].Digest}, target, map[string]string{postgres.OptJobs: "1"})
			return err
		}},
		{"the disk holding the archive's copy fills up", func(t *testing.T) error {
			_, err := drivertest.Restore(ctx, d, c2, store, target, map[string]string{postgres.OptTempDir: drivertest.SmallDisk(t, 1<<20)})
			if err != nil && (!strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "set option tmpdir")) {
				t.Errorf("error does not say the disk is full and what to do: %v", err)
			}
			return err
		}},
		{"the disk fills up while the archive is staged (data_load=pg_restore)", func(t *testing.T) error {
			_, err := drivertest.Restore(ctx, d, c2, store, target, map[string]string{postgres.OptTempDir: drivertest.SmallDisk(t, 1<<20), postgres.OptDataLoad: postgres.DataLoadPgRestore})
			if err != nil && (!strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "set option tmpdir")) {
				t.Errorf("error does not say the disk is full and what to do: %v", err)
			}
			return err
		}},
		{"cancelled mid-download", func(t *testing.T) error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := drivertest.Restore(cctx, d, c2, &drivertest.CancelStore{ChunkStore: store, After: 3, Cancel: cancel}, target, nil)
			return err
		}},
		{"pg_restore fails on an object", func(t *testing.T) error {
			// A grant to a role the target server does not have.
			exec1(t, src.URL("postgres"), `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ghost') THEN CREATE ROLE ghost; END IF; END $$`)
			exec1(t, src.URL("shop2"), `GRANT SELECT ON orders TO ghost`)
			bad := drivertest.Capture(t, d, driver.Source{URL: src.URL("shop2")}, store, "db")
			exec1(t, src.URL("shop2"), `REVOKE SELECT ON orders FROM ghost`)
			_, err := drivertest.Restore(ctx, d, bad, store, target, nil)
			if err != nil && !strings.Contains(err.Error(), "ghost") {
				t.Errorf("error does not carry pg_restore's message: %v", err)
			}
			return err
		}},
	}
	for _, f := range failures {
		t.Run("failure leaves previous data: "+f.name, func(t *testing.T) {
			before := databases(t, dst)
			err := f.run(t)
			if err == nil {
				t.Fatal("apply succeeded; want an error")
			}
			if !strings.HasPrefix(err.Error(), "restore db: ") {
				t.Errorf("error %q does not name the component", err)
			}
			t.Logf("error: %v", err)
			same(t, "target after failure", want1, checksums(t, target))
			if got := databases(t, dst); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("databases changed: %v -> %v", before, got)
			}
		})
	}
}

func TestPostgres_LocalFilesRoundTrip(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	seed(t, src, "shop", 1)
	want := checksums(t, src.URL("shop"))
	dir := t.TempDir()
	for _, f := range []struct{ file, format string }{{"shop.dump", "-Fc"}, {"shop.sql", "-Fp"}} {
		cmd := exec.Command(filepath.Join(src.BinDir, "pg_dump"), f.format, "-f", filepath.Join(dir, f.file), "shop")
		cmd.Env = append(os.Environ(), src.Env()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_dump: %v %s", err, out)
		}
	}
	// Written to a pipe, a custom archive has no data offsets in its table
	// of contents (and is compressed): the index build from the kept copy
	// must not need them.
	piped, err := os.Create(filepath.Join(dir, "shop-piped.dump"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(src.BinDir, "pg_dump"), "-Fc", "shop")
	cmd.Env = append(os.Environ(), src.Env()...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(piped, stdout); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pg_dump to a pipe: %v", err)
	}
	piped.Close()
	store := drivertest.NewStore(t)
	d := postgres.New()
	for _, tc := range []struct{ file, format string }{{"shop.dump", postgres.FormatCustom}, {"shop-piped.dump", postgres.FormatCustom}, {"shop.sql", postgres.FormatSQL}} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if k, err := driver.KindOf(path); err != nil || k != statepkg.KindPostgres {
				t.Fatalf("KindOf = %s, %v", k, err)
			}
			c := drivertest.Capture(t, d, driver.Source{URL: path}, store, "db")
			if c.Format != tc.format {
				t.Fatalf("format %q, want %q", c.Format, tc.format)
			}
			target := dst.URL("from_" + strings.ReplaceAll(tc.file, ".", "_"))
			if _, err := drivertest.Restore(context.Background(), d, c, store, target, nil); err != nil {
				t.Fatal(err)
			}
			same(t, "restored", want, checksums(t, target))
		})
	}
}
