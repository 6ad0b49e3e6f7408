package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// hostileWorld is a real platform with shop/seed and a PostgreSQL database
// app holding 5000 items.
func hostileWorld(t *testing.T) (*platformtest.Server, *client.Client, *testenv.Postgres, string) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	plat := platformtest.Start(t)
	ctx := context.Background()
	admin := plat.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	pg.CreateDatabase(t, "app")
	dsn := pg.URL("app")
	pgExec(t, dsn, `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'item-' || g FROM generate_series(1, 5000) g`)
	return plat, admin, pg, dsn
}

// TestAgent_RestoreOfAHostileSQLPackageRunsNothing: a version whose SQL
// script holds a shell command is refused by the agent's restore, naming
// the line; the command never runs and the target keeps its data.
func TestAgent_RestoreOfAHostileSQLPackageRunsNothing(t *testing.T) {
	plat, admin, pg, dsn := hostileWorld(t)
	ctx := context.Background()
	canary := filepath.Join(t.TempDir(), "pwned")
	script := "DROP TABLE IF EXISTS items;\nCREATE TABLE items (id int);\n\\! touch " + canary + "\n"
	store := admin.Chunks("shop", "seed")
	c, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "sql"},
		strings.NewReader(script), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: "shop/seed", Components: []statepkg.Component{c}}
	if _, err := admin.CommitVersion(ctx, "shop", "seed", "evil", m); err != nil {
		t.Fatal(err)
	}
	lines, code, stderr := agent(t, []string{"UNIKUBE_TOKEN=" + plat.AdminToken, "UNIKUBE_TARGET_PASSWORD=" + pg.Password},
		"restore", "--platform", plat.URL, "--state", "shop/seed", "--interval", "10ms", "--component", "db", "--version", "evil", "--target", noPassword(t, dsn))
	if code != 1 || len(lines) == 0 {
		t.Fatalf("restore exit %d, %v, %s; want exit 1 with an error line", code, lines, stderr)
	}
	last := lines[len(lines)-1]
	if last.Type != "error" || !strings.Contains(last.Error, "line 3") || !strings.Contains(last.Error, `\\! touch`) || !strings.Contains(last.Error, "refused") {
		t.Fatalf("last line %+v, want an error naming line 3 and the command", last)
	}
	t.Log(last.Error)
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("the command in the package ran: the canary file exists")
	}
	if n := pgCount(t, dsn, `SELECT count(*) FROM items`); n != 5000 {
		t.Fatalf("target has %d items after the refused restore, want 5000", n)
	}
}

// TestAgent_CaptureOfATruncatedArchiveCommitsNothing: capturing a
// truncated pg_dump -Fc file fails before anything is committed, so
// @latest stays the version it was.
func TestAgent_CaptureOfATruncatedArchiveCommitsNothing(t *testing.T) {
	plat, admin, pg, dsn := hostileWorld(t)
	ctx := context.Background()
	env := []string{"UNIKUBE_TOKEN=" + plat.AdminToken, "UNIKUBE_TARGET_PASSWORD=" + pg.Password}
	common := []string{"--platform", plat.URL, "--state", "shop/seed", "--interval", "10ms", "--component", "db"}
	lines, code, stderr := agent(t, env, append([]string{"capture", "--source", noPassword(t, dsn), "--tag", "v1"}, common...)...)
	if code != 0 {
		t.Fatalf("capture v1 exit %d: %v %s", code, lines, stderr)
	}
	_, latest, err := admin.GetManifest(ctx, "shop", "seed", statepkg.ExprLatest)
	if err != nil {
		t.Fatal(err)
	}

	dump := filepath.Join(t.TempDir(), "app.dump")
	cmd := exec.Command(filepath.Join(pg.BinDir, "pg_dump"), "-Fc", "-f", dump, "app")
	cmd.Env = append(os.Environ(), pg.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	whole, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dump, whole[:len(whole)*3/4], 0o644); err != nil {
		t.Fatal(err)
	}
	lines, code, stderr = agent(t, env, append([]string{"capture", "--source", dump, "--tag", "v2", "--option", "pg_bin=" + pg.BinDir}, common...)...)
	if code != 1 || len(lines) == 0 {
		t.Fatalf("capture of a truncated archive: exit %d %v %s; want exit 1", code, lines, stderr)
	}
	if last := lines[len(lines)-1]; last.Type != "error" || !strings.Contains(last.Error, "damaged or truncated") {
		t.Fatalf("last line %+v, want an error saying the archive is damaged or truncated", last)
	}
	vs, err := admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{})
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions after the failed capture: %d %v, want still 1", len(vs), err)
	}
	if _, now, err := admin.GetManifest(ctx, "shop", "seed", statepkg.ExprLatest); err != nil || now != latest {
		t.Fatalf("@latest is %s (%v), want still %s", now, err, latest)
	}
}
