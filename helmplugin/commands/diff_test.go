package commands

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The README tour's price change: v1 is the shop's database, v2 the same
// after doubling every price. helm state diff names the products table
// alone, with its rows and sizes before and after, from the manifests.
func TestDiff_PriceChangeShowsTheChangedTableOnly(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase(t, "shop")
	conn, err := pgx.Connect(ctx, pg.URL("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price_cents integer NOT NULL)`)
	exec(`CREATE TABLE orders (id serial PRIMARY KEY, product_id integer REFERENCES products, quantity integer)`)
	exec(`INSERT INTO products (name, price_cents) SELECT 'product ' || i, 100 + i FROM generate_series(1, 500) i`)
	exec(`INSERT INTO orders (product_id, quantity) SELECT 1 + i % 500, i % 7 FROM generate_series(1, 2000) i`)

	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	push := func(tag string) {
		t.Helper()
		store := admin.Chunks("shop", "seed")
		m, _, err := capture.Capture(ctx, []capture.Source{{Name: "db", URL: pg.URL("shop"), Options: map[string]string{postgres.OptBinDir: pg.BinDir}}},
			store, capture.Spec{State: "shop/seed"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CommitVersion(ctx, "shop", "seed", tag, m); err != nil {
			t.Fatal(err)
		}
	}
	push("v1")
	exec(`UPDATE products SET price_cents = price_cents * 2`)
	push("v2")

	w := &world{srv: srv, admin: admin, env: map[string]string{
		client.EnvEndpoint: srv.URL, client.EnvToken: srv.AdminToken, "UNIKUBE_CONFIG": t.TempDir() + "/login.json",
	}}
	start := time.Now()
	out, errOut, code := w.run(t, "", "diff", "shop/seed:v1", "shop/seed:v2")
	t.Logf("helm state diff took %s:\n%s", time.Since(start), out)
	if code != 0 {
		t.Fatalf("diff: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "db         postgres  changed") || strings.Contains(out, "orders") {
		t.Errorf("want db changed and orders not named:\n%s", out)
	}
	if !hasFields(out, "public.products", "changed", "500", "->", "500") {
		t.Errorf("want public.products with its rows before and after:\n%s", out)
	}
	if strings.Contains(out, ": schema") {
		t.Errorf("the schema did not change:\n%s", out)
	}

	out, errOut, code = w.run(t, "", "diff", "shop/seed:v1", ":v2", "-o", "json")
	if code != 0 {
		t.Fatalf("diff -o json: exit %d: %s", code, errOut)
	}
	var r statediff.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Components) != 1 || len(r.Components[0].Tables) != 1 {
		t.Fatalf("want one component with one changed table: %s", out)
	}
	tb := r.Components[0].Tables[0]
	if tb.Name != "public.products" || tb.Change != statediff.Changed || tb.RowsBefore != 500 || tb.RowsAfter != 500 ||
		tb.BytesBefore <= 0 || tb.BytesAfter <= tb.BytesBefore || r.Components[0].SchemaChanged {
		t.Errorf("products = %+v (doubled prices have as many rows and more digits)", tb)
	}

	// A schema change shows as a unified diff of the schema.
	exec(`ALTER TABLE products ADD COLUMN currency text DEFAULT 'EUR'`)
	push("v3")
	out, _, code = w.run(t, "", "diff", "shop/seed:v2", ":v3")
	if code != 0 || !strings.Contains(out, "db: schema\n--- from/db.schema.sql\n+++ to/db.schema.sql\n") || !strings.Contains(out, "+    currency text DEFAULT 'EUR'::text") {
		t.Errorf("schema diff:\n%s", out)
	}
	if out, errOut, code := w.run(t, "", "diff", "shop/seed:v1", "shop/seed:v9"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("missing version: %d %q %q", code, out, errOut)
	}
}

// hasFields reports whether a line of out holds the fields in order.
func hasFields(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") ||
			strings.HasPrefix(strings.Join(strings.Fields(l), " "), strings.Join(fields, " ")+" ") {
			return true
		}
	}
	return false
}
