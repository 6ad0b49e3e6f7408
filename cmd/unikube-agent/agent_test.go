package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestMain lets the test binary act as the agent when re-executed, so the
// tests run the real command as a subprocess without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("UNIKUBE_AGENT_TEST_AS_AGENT") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// agent runs the agent as a subprocess with env (and nothing secret in argv).
func agent(t *testing.T, env []string, args ...string) (lines []Line, code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append([]string{"UNIKUBE_AGENT_TEST_AS_AGENT=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run agent: %v", err)
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("agent wrote a non-JSON line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, code, errb.String()
}

func pgExec(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, s := range sqls {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func pgCount(t *testing.T, dsn, q string) int64 {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// noPassword strips the password from a DSN: the agent must get it from
// the environment.
func noPassword(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// TestAgent_CaptureThenRestoreWithJobToken captures a PostgreSQL database
// and a directory with the agent, alters both, restores them with a
// download-only job token, and checks the data and the JSON-lines output.
func TestAgent_CaptureThenRestoreWithJobToken(t *testing.T) {
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
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	common := []string{"--platform", plat.URL, "--state", "shop/seed", "--interval", "10ms"}
	tokenEnv := "UNIKUBE_TOKEN=" + plat.AdminToken
	pwEnv := "UNIKUBE_TARGET_PASSWORD=" + pg.Password

	lines, code, stderr := agent(t, []string{tokenEnv, pwEnv}, append([]string{"capture", "--component", "db", "--source", noPassword(t, dsn), "--tag", "v1"}, common...)...)
	if code != 0 {
		t.Fatalf("capture exit %d: %v %s", code, lines, stderr)
	}
	last := lines[len(lines)-1]
	if last.Type != "result" || last.Version == nil || last.Version.Tag != "v1" {
		t.Fatalf("capture last line %+v, want a result with version v1", last)
	}
	digest := last.Version.Digest

	// --no-commit: chunks and the component description are uploaded, no
	// version is made.
	lines, code, stderr = agent(t, []string{tokenEnv, pwEnv}, append([]string{"capture", "--no-commit", "--component", "db", "--source", noPassword(t, dsn)}, common...)...)
	if code != 0 || lines[len(lines)-1].ComponentBlob == "" {
		t.Fatalf("capture --no-commit exit %d: %+v %s", code, lines, stderr)
	}
	blob := lines[len(lines)-1].ComponentBlob
	compressed, err := admin.Chunks("shop", "seed").Get(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := statepkg.DecodeChunk(blob, compressed)
	if err != nil {
		t.Fatal(err)
	}
	var comp statepkg.Component
	if err := json.Unmarshal(raw, &comp); err != nil || comp.Name != "db" || len(comp.Chunks) == 0 {
		t.Fatalf("component description %s: %v", raw, err)
	}
	if vs, err := admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{}); err != nil || len(vs) != 1 {
		t.Fatalf("versions after --no-commit: %d %v, want still 1", len(vs), err)
	}

	pgExec(t, dsn, `DELETE FROM items WHERE id > 10`)
	jt, err := admin.CreateJobToken(ctx, "shop", "seed", digest, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lines, code, stderr = agent(t, []string{"UNIKUBE_TOKEN=" + jt.Token, pwEnv},
		append([]string{"restore", "--plan-only", "--component", "db", "--version", digest, "--target", noPassword(t, dsn)}, common...)...)
	if code != 0 || lines[len(lines)-1].Plan == nil || lines[len(lines)-1].Plan.Action != "replace" {
		t.Fatalf("plan-only exit %d: %+v %s; want a replace plan", code, lines, stderr)
	}
	if n := pgCount(t, dsn, `SELECT count(*) FROM items`); n != 10 {
		t.Fatalf("plan-only changed the target: %d rows", n)
	}
	lines, code, stderr = agent(t, []string{"UNIKUBE_TOKEN=" + jt.Token, pwEnv},
		append([]string{"restore", "--component", "db", "--version", digest, "--target", noPassword(t, dsn)}, common...)...)
	if code != 0 {
		t.Fatalf("restore exit %d: %v %s", code, lines, stderr)
	}
	last = lines[len(lines)-1]
	if last.Type != "result" || last.Result == nil || last.Result.Error != "" {
		t.Fatalf("restore last line %+v, want a result", last)
	}
	// The result says where the time went, the agent's steps first.
	var names []string
	for _, s := range last.Steps {
		if s.Seconds < 0 {
			t.Errorf("step %+v has a negative duration", s)
		}
		names = append(names, s.Name)
	}
	if len(names) < 3 || names[0] != "manifest" || names[1] != "plan" {
		t.Errorf("result steps %+v, want manifest, plan, then the restore's phases", last.Steps)
	}
	if n := pgCount(t, dsn, `SELECT count(*) FROM items`); n != 5000 {
		t.Fatalf("after restore: %d rows, want 5000", n)
	}
	sawProgress := false
	for _, l := range lines {
		sawProgress = sawProgress || l.Type == "progress"
	}
	if !sawProgress {
		t.Errorf("no progress lines in %v", lines)
	}
}

// TestAgent_FailsWithErrorOnLastLine checks the failure contract: exit 1
// and the error (saying what to do) as the last JSON line, and no secret in
// the output.
func TestAgent_FailsWithErrorOnLastLine(t *testing.T) {
	plat := platformtest.Start(t)
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no token", nil, []string{"restore", "--platform", plat.URL, "--state", "shop/seed", "--component", "db", "--version", "v1", "--target", "file:///tmp/x"}, "no platform token"},
		{"wrong token", []string{"UNIKUBE_TOKEN=uks_wrong-secret-token"}, []string{"restore", "--platform", plat.URL, "--state", "shop/seed", "--component", "db", "--version", "v1", "--target", "file:///tmp/x"}, "manifest of shop/seed@v1"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines, code, stderr := agent(t, tc.env, tc.args...)
			if tc.want == "manifest of shop/seed@v1" && (len(lines) == 0 || !lines[len(lines)-1].Unchanged) {
				// Failed before touching the target: the executor says so.
				t.Errorf("error line %+v, want unchanged set", lines)
			}
			if code != 1 || len(lines) == 0 {
				t.Fatalf("exit %d, lines %v, stderr %s; want exit 1 with an error line", code, lines, stderr)
			}
			last := lines[len(lines)-1]
			if last.Type != "error" || !strings.Contains(last.Error, tc.want) {
				t.Fatalf("last line %+v, want an error containing %q", last, tc.want)
			}
			if strings.Contains(last.Error, "uks_wrong-secret-token") {
				t.Fatalf("error leaks the token: %s", last.Error)
			}
		})
	}
}

// TestAgent_InstallCopiesItself checks the init-container step.
func TestAgent_InstallCopiesItself(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "unikube-agent")
	if _, code, stderr := agent(t, nil, "install", dst); code != 0 {
		t.Fatalf("install exit %d: %s", code, stderr)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o755 || st.Size() == 0 {
		t.Fatalf("installed binary: %v %v", st, err)
	}
}

// TestAgent_VerifiesAPlatformWithAPrivateCA: the agent trusts the bundle
// UNIKUBE_CA_FILE (or --ca-file) names; without it the restore stops at its
// first call, before the target is touched, saying what to do.
func TestAgent_VerifiesAPlatformWithAPrivateCA(t *testing.T) {
	ca := testenv.NewCA(t)
	plat := platformtest.Start(t, platformtest.WithPrivateCA(ca))
	ctx := context.Background()
	admin := plat.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "files", ""); err != nil {
		t.Fatal(err)
	}
	src, dst := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("from the state"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "a.txt"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--platform", plat.URL, "--state", "shop/files", "--interval", "10ms", "--component", "files"}
	tokenEnv := "UNIKUBE_TOKEN=" + plat.AdminToken
	lines, code, stderr := agent(t, []string{tokenEnv}, append([]string{"capture", "--source", "file://" + src, "--tag", "v1", "--ca-file", ca.CertFile}, common...)...)
	if code != 0 || lines[len(lines)-1].Version == nil {
		t.Fatalf("capture with --ca-file: exit %d %+v %s", code, lines, stderr)
	}
	restore := append([]string{"restore", "--version", "v1", "--target", "file://" + dst}, common...)

	lines, code, _ = agent(t, []string{tokenEnv}, restore...)
	last := lines[len(lines)-1]
	if code != 1 || last.Type != "error" || !last.Unchanged ||
		!strings.Contains(last.Error, "certificate signed by unknown authority") || !strings.Contains(last.Error, plat.URL) || !strings.Contains(last.Error, "UNIKUBE_CA_FILE") {
		t.Fatalf("without the CA: exit %d, last line %+v; want an unchanged error naming the URL, the x509 reason and UNIKUBE_CA_FILE", code, last)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "before" {
		t.Fatalf("the failed restore changed the target: %q", b)
	}

	lines, code, stderr = agent(t, []string{tokenEnv, "UNIKUBE_CA_FILE=" + ca.CertFile}, restore...)
	if code != 0 || lines[len(lines)-1].Type != "result" {
		t.Fatalf("with UNIKUBE_CA_FILE: exit %d %+v %s", code, lines, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "from the state" {
		t.Fatalf("after restore: %q", b)
	}
}
