package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// seedAwkward fills db with what a COPY stream must carry faithfully: a
// big table (tens of MB, so its rows are split among connections), rows
// with tabs, newlines, backslashes, NULLs and non-ASCII text, bytea,
// arrays, identity and generated columns, a sequence advanced past its
// rows, a large object, and many small tables. Table "guarded" has a check
// that fails on one row in the middle when the session setting
// unikube.fail is 'yes', so a restore can be made to fail mid-data.
func seedAwkward(t testing.TB, pg *testenv.Postgres, db string) {
	t.Helper()
	pg.CreateDatabase(t, db)
	stmts := []string{
		`CREATE TABLE big (id bigint PRIMARY KEY, payload text, n int)`,
		`INSERT INTO big SELECT g, md5(g::text) || repeat('y', 60) || md5((g*7)::text), g % 1000 FROM generate_series(1, 300000) g`,
		`CREATE INDEX big_n ON big (n)`,
		`CREATE TABLE awkward (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, s text, b bytea, a text[], j jsonb,
			len int GENERATED ALWAYS AS (length(s)) STORED)`,
		`INSERT INTO awkward (s, b, a, j) VALUES
			(E'tab\there', '\x00ff5c0a'::bytea, ARRAY[E'x\ty', 'q"uote', NULL], '{"k": "v\n"}'),
			(E'new\nline\r\nand cr', NULL, '{}', NULL),
			(E'back\\slash \\. \\N', ''::bytea, ARRAY['\.'], '"\\"'),
			(NULL, NULL, NULL, NULL),
			('\.', NULL, NULL, NULL),
			('ünïcødé 日本語 🐘', convert_to('ünï', 'UTF8'), ARRAY['ü'], '{"ü": 1}'),
			('', NULL, ARRAY[''], '[]')`,
		`CREATE SEQUENCE counter START 5`,
		`SELECT setval('counter', 4242)`,
		`SELECT lo_from_bytea(424242, convert_to(repeat('large object ', 20000), 'UTF8'))`,
		`CREATE FUNCTION public.guard(id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
			BEGIN
				IF id = 150000 AND current_setting('unikube.fail', true) = 'yes' THEN
					RAISE EXCEPTION 'guard rejects row %', id;
				END IF;
				RETURN true;
			END $$`,
		`CREATE TABLE guarded (id bigint CHECK (public.guard(id)), payload text)`,
		`INSERT INTO guarded SELECT g, repeat('z', 100) FROM generate_series(1, 200000) g`,
	}
	for i := range 40 {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE small_%d AS SELECT g AS id, 'row ' || g AS v FROM generate_series(1, %d) g`, i, i*10))
	}
	exec1(t, pg.URL(db), stmts...)
}

// extras reads what checksums does not: the sequence, the large object,
// the identity column's next value and the generated column.
func extras(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var seq, lo, gen, ident string
	for _, q := range []struct {
		sql string
		dst *string
	}{
		{`SELECT last_value || ':' || is_called FROM counter`, &seq},
		{`SELECT md5(lo_get(424242))`, &lo},
		{`SELECT string_agg(coalesce(len::text, 'null'), ',' ORDER BY id) FROM awkward`, &gen},
		{`SELECT pg_get_serial_sequence('awkward', 'id') || ':' || (SELECT last_value FROM awkward_id_seq)`, &ident},
	} {
		if err := c.QueryRow(ctx, q.sql).Scan(q.dst); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return fmt.Sprintf("sequence %s, large object %s, generated %s, identity %s", seq, lo, gen, ident)
}

// restoreAgain restores c even when the target already holds it.
func restoreAgain(ctx context.Context, d driver.Driver, c statepkg.Component, store statepkg.ChunkStore, url string, opts map[string]string) (driver.ComponentResult, error) {
	return d.Restore(ctx, c, driver.StoreSource{Store: store, Component: c}, driver.Target{URL: url, Options: opts, State: "test/state", Digest: c.Digest, Force: true}, nil)
}

func TestPostgres_ParallelDataLoad(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	seedAwkward(t, src, "awk")
	exec1(t, src.URL("postgres"), `CREATE DATABASE other`)
	exec1(t, src.URL("other"), `CREATE TABLE other (id int PRIMARY KEY)`, `INSERT INTO other VALUES (1), (2)`)
	store := drivertest.NewStore(t)
	d := postgres.New()
	c := drivertest.Capture(t, d, driver.Source{URL: src.URL("awk")}, store, "db")
	other := drivertest.Capture(t, d, driver.Source{URL: src.URL("other")}, store, "db")
	want, wantExtras := checksums(t, src.URL("awk")), extras(t, src.URL("awk"))
	wantOther := checksums(t, src.URL("other"))
	ctx := context.Background()
	target := dst.URL("app")
	exec1(t, dst.URL("postgres"), `CREATE ROLE loader`)

	for _, tc := range []struct {
		name string
		opts map[string]string
	}{
		{"parallel load over 3 connections", map[string]string{postgres.OptJobs: "3", postgres.OptDataLoad: postgres.DataLoadParallel}},
		{"pg_restore loads the data as it downloads, then builds indexes with -j (the default)", map[string]string{postgres.OptJobs: "3"}},
		{"pg_restore -j loads the data from a staged archive", map[string]string{postgres.OptJobs: "3", postgres.OptDataLoad: postgres.DataLoadPgRestore}},
		{"parallel load with a role and no restore settings", map[string]string{postgres.OptJobs: "2", postgres.OptDataLoad: postgres.DataLoadParallel, postgres.OptRole: "loader", postgres.OptSettings: "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start from another database each time, so each run really replaces.
			if _, err := drivertest.Restore(ctx, d, other, store, target, nil); err != nil {
				t.Fatal(err)
			}
			same(t, "other db", wantOther, checksums(t, target))
			if _, err := drivertest.Restore(ctx, d, c, store, target, tc.opts); err != nil {
				t.Fatal(err)
			}
			same(t, "restored db", want, checksums(t, target))
			if got := extras(t, target); got != wantExtras {
				t.Errorf("restored db:\n got %s\nwant %s", got, wantExtras)
			}
		})
	}

	t.Run("the big table is split among the connections", func(t *testing.T) {
		if _, err := restoreAgain(ctx, d, c, store, target, map[string]string{postgres.OptJobs: "3", postgres.OptDataLoad: postgres.DataLoadParallel}); err != nil {
			t.Fatal(err)
		}
		// Each connection's COPY commits as its own transaction.
		var txns int
		conn, err := pgx.Connect(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM big`).Scan(&txns); err != nil {
			t.Fatal(err)
		}
		if txns < 2 {
			t.Errorf("big was loaded by %d transaction(s); want its rows split among connections", txns)
		}
	})

	for _, dl := range []string{postgres.DataLoadParallel, postgres.DataLoadStream} {
		t.Run("a failure mid-data leaves the target and no staging database: data_load="+dl, func(t *testing.T) {
			failMidData(ctx, t, d, c, store, dst, target, dl)
		})
	}

	t.Run("an unknown data_load is refused", func(t *testing.T) {
		_, err := restoreAgain(ctx, d, c, store, target, map[string]string{postgres.OptDataLoad: "magic"})
		if err == nil || !strings.Contains(err.Error(), "data_load") {
			t.Fatalf("restore with data_load=magic: %v, want an error naming the option", err)
		}
	})
}

// failMidData restores c with a setting that makes the guard on table
// guarded fail half-way through its rows, and checks nothing changed.
func failMidData(ctx context.Context, t *testing.T, d driver.Driver, c statepkg.Component, store statepkg.ChunkStore, dst *testenv.Postgres, target, dataLoad string) {
	before, beforeDBs := checksums(t, target), databases(t, dst)
	_, err := restoreAgain(ctx, d, c, store, target, map[string]string{postgres.OptJobs: "2", postgres.OptDataLoad: dataLoad, postgres.OptSettings: "unikube.fail=yes"})
	if err == nil {
		t.Fatal("restore succeeded; want the guard's error")
	}
	t.Logf("error: %v", err)
	for _, part := range []string{"restore db: ", "restore: ", "guarded", "guard rejects row 150000"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	same(t, "target after failure", before, checksums(t, target))
	if got := databases(t, dst); fmt.Sprint(got) != fmt.Sprint(beforeDBs) {
		t.Errorf("databases changed: %v -> %v", beforeDBs, got)
	}
}
