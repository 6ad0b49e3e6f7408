package postgres_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Capture packages only what a restore can read: a truncated archive, a
// truncated script and a hostile script are refused, saying why.
func TestPostgres_CaptureRefusesDamagedArchivesAndHostileScripts(t *testing.T) {
	src := testenv.StartPostgres(t)
	seed(t, src, "shop", 1)
	dir := t.TempDir()
	dump := filepath.Join(dir, "shop.dump")
	cmd := exec.Command(filepath.Join(src.BinDir, "pg_dump"), "-Fc", "-f", dump, "shop")
	cmd.Env = append(os.Environ(), src.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	whole, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		body []byte
		want string
	}{
		"truncated in the data.dump":   {whole[:len(whole)*2/3], "damaged or truncated"},
		"truncated near the end.dump":  {whole[:len(whole)-100], "damaged or truncated"},
		"truncated in the header.dump": {whole[:200], "damaged or truncated"},
		"hostile.sql":                  {[]byte("CREATE TABLE t (a int);\n\\! touch /tmp/pwned\n"), "line 2"},
		"cut short.sql":                {[]byte("CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n2\n"), "truncated"},
	}
	store := drivertest.NewStore(t)
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, f.body, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := drivertest.CaptureErr(context.Background(), postgres.New(), driver.Source{URL: path, Options: map[string]string{postgres.OptBinDir: src.BinDir}}, store, "db")
			if err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("capture: %v; want an error saying %q", err, f.want)
			}
			t.Log(err)
		})
	}
	// The whole archive still captures.
	drivertest.Capture(t, postgres.New(), driver.Source{URL: dump}, store, "db")
}

// A plain pg_dump of objects whose text looks like psql commands (in
// strings, dollar quotes, comments, identifiers and COPY data) passes the
// script filter and restores as it was.
func TestPostgres_PlainDumpOfLookalikesRestores(t *testing.T) {
	src, dst := testenv.StartPostgres(t), testenv.StartPostgres(t)
	src.CreateDatabase(t, "shop")
	exec1(t, src.URL("shop"),
		`CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL CHECK (name !~ '^\d+\\$'), "odd ""col""" text, "a$b" int, tags text[], created timestamptz DEFAULT '2024-01-01')`,
		`COMMENT ON TABLE items IS E'it''s \\! not a command; \\\\ and ''quotes'''`,
		`CREATE FUNCTION f(x int) RETURNS int LANGUAGE plpgsql AS $fn$ DECLARE s text := '\! nope'; BEGIN /* \o |x */ RETURN x + 1; END $fn$`,
		`CREATE FUNCTION g() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 'a;b' ELSE '\c' END; END`,
		`CREATE VIEW v AS SELECT id, tags[1:2] AS t, name || $$ \! $$ AS n FROM items`,
		`INSERT INTO items (name, "odd ""col""", "a$b", tags) SELECT 'x\! ' || g || E'\ttab\nnewline\\', '\.' , g, ARRAY['\i', 'b''c'] FROM generate_series(1, 500) g`,
		`INSERT INTO items (name) VALUES ('\.'), (E'\\.'), ('COPY x FROM stdin;')`,
	)
	want := checksums(t, src.URL("shop"))
	file := filepath.Join(t.TempDir(), "shop.sql")
	cmd := exec.Command(filepath.Join(src.BinDir, "pg_dump"), "-Fp", "-f", file, "shop")
	cmd.Env = append(os.Environ(), src.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	store := drivertest.NewStore(t)
	c := drivertest.Capture(t, postgres.New(), driver.Source{URL: file}, store, "db")
	if _, err := drivertest.Restore(context.Background(), postgres.New(), c, store, dst.URL("app"), nil); err != nil {
		t.Fatal(err)
	}
	same(t, "restored from a plain dump", want, checksums(t, dst.URL("app")))
}
