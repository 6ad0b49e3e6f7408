package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/mysql"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func open(t testing.TB, m *testenv.MariaDB, db string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", m.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func seed(t testing.TB, m *testenv.MariaDB, db string, version int) {
	t.Helper()
	m.CreateDatabase(t, db)
	d := open(t, m, db)
	for _, q := range []string{
		"CREATE TABLE items (id int AUTO_INCREMENT PRIMARY KEY, name varchar(200) NOT NULL, price decimal(10,2), data blob, KEY (name))",
		"CREATE TABLE orders (id bigint PRIMARY KEY, item int, qty int, FOREIGN KEY (item) REFERENCES items(id))",
		"CREATE TABLE audit (n int)",
		"CREATE VIEW expensive AS SELECT id, name FROM items WHERE price > 50",
		"CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NEW.qty)",
		"CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2",
		fmt.Sprintf("CREATE EVENT purge_v%d ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM audit", version),
		fmt.Sprintf("INSERT INTO items (name, price, data) SELECT CONCAT('item-%d-', seq, REPEAT('x', 50)), seq %% 100, UNHEX('00FF10') FROM seq_1_to_20000", version),
		fmt.Sprintf("INSERT INTO orders SELECT seq, 1 + seq %% 20000, seq %% 7 + %d FROM seq_1_to_10000", version),
	} {
		if _, err := d.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// checksums returns CHECKSUM TABLE and row counts of every base table plus
// the names of views, triggers and routines.
func checksums(t testing.TB, m *testenv.MariaDB, db string) map[string]string {
	t.Helper()
	d := open(t, m, db)
	out := map[string]string{}
	rows, err := d.Query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> 'unikube_state'", db)
	if err != nil {
		t.Fatal(err)
	}
	type tb struct{ name, typ string }
	var tables []tb
	for rows.Next() {
		var x tb
		if err := rows.Scan(&x.name, &x.typ); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, x)
	}
	rows.Close()
	for _, x := range tables {
		if x.typ != "BASE TABLE" {
			var n int
			if err := d.QueryRow("SELECT COUNT(*) FROM `" + x.name + "`").Scan(&n); err != nil {
				t.Fatalf("view %s: %v", x.name, err)
			}
			out["view "+x.name] = fmt.Sprint(n)
			continue
		}
		var name string
		var sum sql.NullInt64
		if err := d.QueryRow("CHECKSUM TABLE `"+x.name+"`").Scan(&name, &sum); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.QueryRow("SELECT COUNT(*) FROM `" + x.name + "`").Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[x.name] = fmt.Sprintf("%d rows checksum %d", n, sum.Int64)
	}
	var trig []string
	rows, err = d.Query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? UNION ALL SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? UNION ALL SELECT CONCAT('event ', EVENT_NAME, ' ', STATUS) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", db, db, db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		trig = append(trig, s)
	}
	rows.Close()
	sort.Strings(trig)
	out["#programs"] = strings.Join(trig, ",")
	return out
}

func schemas(t testing.TB, m *testenv.MariaDB) string {
	t.Helper()
	rows, err := open(t, m, "").Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func same(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("%s differs:\nwant %v\ngot  %v", what, want, got)
	}
}

func TestMySQL_CaptureRestoreRenameSwapAndFailures(t *testing.T) {
	src, dst := testenv.StartMariaDB(t), testenv.StartMariaDB(t)
	seed(t, src, "shop", 1)
	seed(t, src, "shop2", 2)
	want1, want2 := checksums(t, src, "shop"), checksums(t, src, "shop2")
	store := drivertest.NewStore(t)
	d := mysql.New()
	c1 := drivertest.Capture(t, d, driver.Source{URL: src.URL("shop")}, store, "db")
	c2 := drivertest.Capture(t, d, driver.Source{URL: src.URL("shop2")}, store, "db")
	ctx := context.Background()
	target := dst.URL("app")

	if pl, err := d.Plan(ctx, c1, driver.Target{URL: target}); err != nil || pl.Action != driver.ActionCreate {
		t.Fatalf("plan %+v %v", pl, err)
	}
	if _, err := drivertest.Restore(ctx, d, c1, store, target, nil); err != nil {
		t.Fatal(err)
	}
	same(t, "first apply", want1, checksums(t, dst, "app"))

	cs := &drivertest.CountingStore{ChunkStore: store}
	if res, err := drivertest.Restore(ctx, d, c1, cs, target, nil); err != nil || res.Action != driver.ActionSkip || cs.Gets.Load() != 0 {
		t.Errorf("re-apply: %+v %v %d chunks", res, err, cs.Gets.Load())
	}
	res, err := drivertest.Restore(ctx, d, c2, store, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "second apply", want2, checksums(t, dst, "app"))
	// The previous copy keeps its events, disabled so they do not run
	// against tables kept only for rollback.
	prevWant := maps.Clone(want1)
	prevWant["#programs"] = strings.ReplaceAll(prevWant["#programs"], "event purge_v1 ENABLED", "event purge_v1 DISABLED")
	same(t, "previous tables", prevWant, checksums(t, dst, res.Previous))
	if m, err := mysql.ReadMarker(ctx, target); err != nil || m == nil || m.ComponentDigest != c2.Digest {
		t.Errorf("marker %+v %v", m, err)
	}
	before := schemas(t, dst)

	failures := map[string]func() error{
		"corrupt chunk": func() error {
			_, err := drivertest.Restore(ctx, d, c1, drivertest.CorruptStore{ChunkStore: store, Digest: c1.Chunks[len(c1.Chunks)-1].Digest}, target, nil)
			return err
		},
		"cancelled": func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := drivertest.Restore(cctx, d, c1, &drivertest.CancelStore{ChunkStore: store, After: 2, Cancel: cancel}, target, nil)
			return err
		},
	}
	for name, run := range failures {
		t.Run("failure leaves previous data: "+name, func(t *testing.T) {
			err := run()
			if err == nil || !strings.HasPrefix(err.Error(), "restore db: restore: ") {
				t.Fatalf("err = %v; want a restore-phase error naming the component", err)
			}
			t.Logf("error: %v", err)
			same(t, "target after failure", want2, checksums(t, dst, "app"))
			if got := schemas(t, dst); got != before {
				t.Errorf("schemas %s, want %s", got, before)
			}
		})
	}
}

func TestMySQL_RestoresADumpMadeWithDatabasesIntoTheTarget(t *testing.T) {
	src, dst := testenv.StartMariaDB(t), testenv.StartMariaDB(t)
	seed(t, src, "shop", 1)
	want := checksums(t, src, "shop")
	file := filepath.Join(t.TempDir(), "shop.sql")
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mariadb-dump", "--user="+src.User, "--host="+src.Host, "--port="+fmt.Sprint(src.Port), "--protocol=tcp", "--routines", "--triggers", "--events", "--databases", "shop")
	cmd.Env = append(os.Environ(), src.Env()...)
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("dump: %v %s", err, errb.String())
	}
	out.Close()
	if k, err := driver.KindOf(file); err != nil || k != statepkg.KindMySQL {
		t.Fatalf("KindOf = %s %v", k, err)
	}
	store := drivertest.NewStore(t)
	c := drivertest.Capture(t, mysql.New(), driver.Source{URL: file}, store, "db")
	if _, err := drivertest.Restore(context.Background(), mysql.New(), c, store, dst.URL("other"), nil); err != nil {
		t.Fatal(err)
	}
	same(t, "restored from file", want, checksums(t, dst, "other"))
	if strings.Contains(schemas(t, dst), "shop") {
		t.Errorf("the dump's own schema was created: %s", schemas(t, dst))
	}
}
