package testenv_test

import (
	"database/sql"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartMariaDB_ServesReadsAndWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	m := testenv.StartMariaDB(t)
	t.Logf("mariadb ready on port %d in %s", m.Port, time.Since(start).Round(time.Millisecond))

	m.CreateDatabase(t, "shop")
	db, err := sql.Open("mysql", m.DSN("shop"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE items (id INT PRIMARY KEY, name TEXT); INSERT INTO items VALUES (1, 'grüße')"); err != nil {
		t.Fatalf("create+insert: %v", err)
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT name FROM items WHERE id = 1").Scan(&name); err != nil {
		t.Fatalf("select: %v", err)
	}
	if name != "grüße" {
		t.Fatalf("read %q, want %q", name, "grüße")
	}
}

func TestMariaDB_RejectsWrongPassword(t *testing.T) {
	t.Parallel()
	m := testenv.StartMariaDB(t)
	bad := *m
	bad.Password = "wrong"
	db, err := sql.Open("mysql", bad.DSN(""))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	if err := db.Ping(); err == nil {
		t.Fatalf("ping with a wrong password succeeded: auth is not enforced")
	}
	// The client tool works with Env() and --user.
	mariadb, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("mariadb client not installed")
	}
	out, err := runTool(t, mariadb, m.Env(), "--protocol=tcp", "--user="+m.User, "-N", "-e", "SELECT 40+2")
	if err != nil {
		t.Fatalf("mariadb client with Env(): %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != "42" {
		t.Fatalf("mariadb client printed %q, want 42", out)
	}
}
