package restore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// hostileVersion is a one-component version whose SQL script is script.
func hostileVersion(t *testing.T, store statepkg.ChunkStore, kind statepkg.Kind, script string) (*statepkg.Manifest, string) {
	t.Helper()
	c, _, err := statepkg.WriteComponent(context.Background(), store, statepkg.Component{Name: "db", Kind: kind, Format: "sql"},
		strings.NewReader(script), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: "shop/seed", Components: []statepkg.Component{c}}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return m, statepkg.ManifestDigest(enc)
}

func pgDatabases(t *testing.T, pg *testenv.Postgres) string {
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
	return strings.Join(names, ",")
}

// TestApply_HostilePostgresScriptsRunNothingAndChangeNothing applies SQL
// packages holding each psql escape to a real PostgreSQL: every apply is
// refused naming the line, the command never runs (its canary file does
// not exist), and the target keeps its data.
func TestApply_HostilePostgresScriptsRunNothingAndChangeNothing(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	pg.CreateDatabase(t, "app")
	pgExec(t, pg.URL("app"), `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'item-' || g FROM generate_series(1, 100) g`)
	want, wantDBs := pgSum(t, pg.URL("app")), pgDatabases(t, pg)
	canary := filepath.Join(t.TempDir(), "pwned")
	// Each script first replaces the data, so a script that ran would show.
	prelude := "DROP TABLE IF EXISTS items;\nCREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items VALUES (1, 'hostile');\n"
	attacks := map[string]string{
		`\!`:                   `\! touch ` + canary + "\n",
		`\o |cmd`:              `\o |touch ` + canary + "\nSELECT 1;\n",
		`\g |cmd`:              `SELECT 1 \g |touch ` + canary + "\n",
		`\copy ... program`:    `\copy (SELECT 1) TO PROGRAM 'touch ` + canary + "'\n",
		`\set backtick`:        `\set x ` + "`touch " + canary + "`\n",
		`\gexec`:               `SELECT 'SELECT 1' \gexec` + "\n",
		`\i`:                   `\i /etc/hostname` + "\n",
		`\ir`:                  `\ir x.sql` + "\n",
		`\connect`:             "\\connect postgres\nDROP DATABASE app;\n",
		`COPY ... PROGRAM`:     "COPY items TO PROGRAM 'touch " + canary + "';\n",
		`COPY from a file`:     "COPY items FROM '/etc/hostname';\n",
		`meta after COPY data`: "COPY items FROM stdin;\n2\tx\n\\.\n\\! touch " + canary + "\n",
		`shell mid-line`:       "SELECT 2; \\! touch " + canary + "\n",
	}
	store := statepkg.NewMemoryStore()
	for name, attack := range attacks {
		for _, strategy := range []string{"swap", "in-place"} {
			t.Run(name+" "+strategy, func(t *testing.T) {
				m, digest := hostileVersion(t, store, statepkg.KindPostgres, prelude+attack)
				plan, err := restore.Plan(ctx, m, digest, restore.Targets{"db": {URL: pg.URL("app"), Options: map[string]string{"strategy": strategy}}}, store, restore.PlanOptions{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = restore.Apply(ctx, plan, restore.ApplyOptions{})
				line := "line 4:"
				if name == "meta after COPY data" {
					line = "line 7:" // after the data
				}
				if err == nil || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), "refused") {
					t.Fatalf("apply: %v; want a refusal naming %s", err, line)
				}
				t.Log(err)
				if _, err := os.Stat(canary); err == nil {
					t.Fatal("the command in the package ran: the canary file exists")
				}
				if got := pgSum(t, pg.URL("app")); got != want {
					t.Errorf("target changed: %s, want %s", got, want)
				}
				if got := pgDatabases(t, pg); got != wantDBs {
					t.Errorf("databases %s, want %s", got, wantDBs)
				}
			})
		}
	}
}

func mariaSum(t *testing.T, m *testenv.MariaDB, db string) string {
	t.Helper()
	d, err := sql.Open("mysql", m.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	var sum sql.NullString
	if err := d.QueryRow("SELECT COUNT(*), MD5(GROUP_CONCAT(id, name ORDER BY id)) FROM items").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", n, sum.String)
}

// TestApply_HostileMySQLScriptsRunNothingAndChangeNothing applies SQL
// packages holding each mysql-client escape to a real MariaDB: refused
// naming the line, nothing run, the target and the server's other
// databases unchanged.
func TestApply_HostileMySQLScriptsRunNothingAndChangeNothing(t *testing.T) {
	my := testenv.StartMariaDB(t)
	ctx := context.Background()
	for _, db := range []string{"app", "other"} {
		my.CreateDatabase(t, db)
		d, err := sql.Open("mysql", my.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"CREATE TABLE items (id int PRIMARY KEY, name varchar(50))", "INSERT INTO items SELECT seq, CONCAT('item-', seq) FROM seq_1_to_100"} {
			if _, err := d.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
	want := mariaSum(t, my, "app")
	canary := filepath.Join(t.TempDir(), "pwned")
	prelude := "DROP TABLE IF EXISTS items;\nCREATE TABLE items (id int PRIMARY KEY, name varchar(50));\nINSERT INTO items VALUES (1, 'hostile');\n"
	attacks := map[string]string{
		`\!`:                 `\! touch ` + canary + "\n",
		`system`:             "system touch " + canary + "\n",
		`tee`:                "tee " + canary + "\n",
		`pager`:              "pager touch " + canary + "\nSELECT 1;\n",
		`source`:             "source /etc/hostname\n",
		`\u`:                 "\\u other\nDELETE FROM items;\n",
		`connect`:            "connect other\nDELETE FROM items;\n",
		`USE`:                "USE other;\nDELETE FROM items;\n",
		`qualified other`:    "DELETE FROM other.items;\n",
		`qualified target`:   "DELETE FROM `app`.`items`;\n",
		`into outfile`:       "SELECT 1 INTO OUTFILE '" + canary + "';\n",
		`load data local`:    "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE items;\n",
		`drop other`:         "DROP DATABASE other;\n",
		`shell mid-line`:     "INSERT INTO items VALUES (2, 'x'); \\! touch " + canary + "\n",
		`ansi quotes`:        "SET sql_mode = 'ANSI_QUOTES';\n",
		`shell in a comment`: "/*!40101 \\! touch " + canary + " */;\n",
	}
	store := statepkg.NewMemoryStore()
	for name, attack := range attacks {
		t.Run(name, func(t *testing.T) {
			m, digest := hostileVersion(t, store, statepkg.KindMySQL, prelude+attack)
			plan, err := restore.Plan(ctx, m, digest, restore.Targets{"db": {URL: my.URL("app")}}, store, restore.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = restore.Apply(ctx, plan, restore.ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("apply: %v; want a refusal naming line 4", err)
			}
			t.Log(err)
			if _, err := os.Stat(canary); err == nil {
				t.Fatal("the command in the package ran: the canary file exists")
			}
			for _, db := range []string{"app", "other"} {
				if got := mariaSum(t, my, db); got != want {
					t.Errorf("%s changed: %s, want %s", db, got, want)
				}
			}
		})
	}
}
