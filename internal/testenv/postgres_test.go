package testenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartPostgres_ServesReadsAndWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pg := testenv.StartPostgres(t)
	t.Logf("postgres ready on port %d in %s", pg.Port, time.Since(start).Round(time.Millisecond))

	pg.CreateDatabase(t, "shop")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.URL("shop"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, name text)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO items VALUES (1, 'seed')`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT name FROM items WHERE id = 1`).Scan(&name); err != nil {
		t.Fatalf("select: %v", err)
	}
	if name != "seed" {
		t.Fatalf("read %q, want %q", name, "seed")
	}
}

func TestPostgresEnv_DrivesClientTools(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	out, err := runTool(t, filepath.Join(pg.BinDir, "psql"), pg.Env(), "-d", "postgres", "-tAc", "SELECT current_user")
	if err != nil {
		t.Fatalf("psql with Env(): %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != pg.User {
		t.Fatalf("psql current_user = %q, want %q", strings.TrimSpace(out), pg.User)
	}
}

func TestRunPostgres_StopRemovesEverything(t *testing.T) {
	t.Parallel()
	pg, stop, err := testenv.RunPostgres(t.Context(), "")
	if err != nil {
		t.Fatalf("RunPostgres: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(pg.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still exists after stop (stat err %v)", pg.DataDir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, pg.URL("postgres")); err == nil {
		conn.Close(ctx)
		t.Fatalf("server still answers after stop")
	}
}

// runTool runs a client binary with env added to a minimal environment.
func runTool(t *testing.T, path string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func TestPostgres_EachServerHasItsOwnPassword(t *testing.T) {
	t.Parallel()
	a := testenv.StartPostgres(t)
	b := testenv.StartPostgres(t)
	if a.Password == b.Password {
		t.Fatalf("two servers share the password %q (template bootstrap password leaked?)", a.Password)
	}
	// Each server accepts only its own password.
	wrong := *a
	wrong.Password = b.Password
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, wrong.URL("postgres")); err == nil {
		conn.Close(ctx)
		t.Fatalf("server on port %d accepted another server's password", a.Port)
	}
	conn, err := pgx.Connect(ctx, a.URL("postgres"))
	if err != nil {
		t.Fatalf("connect with own password: %v", err)
	}
	conn.Close(ctx)
}
