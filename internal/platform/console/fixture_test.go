package console_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// shop is the platform the console tests browse: project shop with state
// seed (v1, then candidate [cand]-2), a cluster script with a succeeded
// and a failed run, and one user per role.
type shop struct {
	srv                           *platformtest.Server
	owner, maintainer, viewer     string // their platform tokens
	script, failedRun, succeeded  string
	candidateDigest, latestDigest string
}

const traceText = `Traceback (most recent call last):
  File "/script/main.py", line 12, in <module>
    report(orders)
  File "/script/main.py", line 7, in report
    total = sum(o["price"] for o in orders)
KeyError: 'price'`

func startShop(t testing.TB) *shop {
	t.Helper()
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "shop", "The web shop's seeded environments"))
	must(admin.CreateState(ctx, "shop", "seed", "Products, prices and a few orders for review apps"))
	m, mem := manifest(t, "1", "first seed")
	must3(admin.PushVersion(ctx, "shop", "seed", "v1", m, mem, client.TransferOptions{}))
	m2 := *m
	m2.Revision, m2.Message = "2", "prices doubled"
	cand := must(admin.CommitVersion(ctx, "shop", "seed", statepkg.CandidatePrefix+"2", &m2))
	s := &shop{srv: srv, script: "order-report", candidateDigest: cand.Digest}
	s.latestDigest = must(admin.GetVersion(ctx, "shop", "seed", "@latest")).Digest
	for user, role := range map[string]string{"olga": client.RoleOwner, "mia": client.RoleMaintainer, "vic": client.RoleViewer} {
		must(admin.PutGrant(ctx, "shop", "", "user:"+user, role))
	}
	s.owner = srv.UserToken(t, "olga-laptop", "olga")
	s.maintainer = srv.UserToken(t, "mia-laptop", "mia")
	s.viewer = srv.UserToken(t, "vic-laptop", "vic")

	must(admin.PutScript(ctx, "shop", s.script, client.ScriptSpec{Description: "Sums the orders of the day", Interpreter: "python",
		Body: "import json\nprint(json.dumps({'orders': 3}))\n", Variables: []client.Variable{{Name: "DAY", Default: "today"}}}))
	ok := must(admin.CreateRun(ctx, "shop", s.script, nil, "shop-review/shop"))
	start, end := time.Now().Add(-90*time.Second), time.Now().Add(-88*time.Second)
	zero, one := 0, 1
	logOK, logFail := "{\"orders\": 3}\n", "reading orders\n"
	must(admin.UpdateRun(ctx, "shop", s.script, ok.ID, client.RunUpdate{Status: client.RunSucceeded, StartedAt: &start, FinishedAt: &end, ExitCode: &zero, LogTail: &logOK}))
	failed := must(admin.CreateRun(ctx, "shop", s.script, map[string]string{"DAY": "2026-12-01"}, "shop-review/shop"))
	trace := traceText
	must(admin.UpdateRun(ctx, "shop", s.script, failed.ID, client.RunUpdate{Status: client.RunFailed, StartedAt: &start, FinishedAt: &end, ExitCode: &one, LogTail: &logFail, StackTrace: &trace}))
	s.succeeded, s.failedRun = ok.ID, failed.ID
	return s
}

// manifest is a one-component version (a small PostgreSQL dump) with its
// chunks in memory.
func manifest(t testing.TB, revision, message string) (*statepkg.Manifest, *statepkg.MemoryStore) {
	t.Helper()
	mem := statepkg.NewMemoryStore()
	comp, _, err := statepkg.WriteComponent(context.Background(), mem,
		statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom"}, bytes.NewReader(bytes.Repeat([]byte("INSERT INTO products VALUES (1, 'mug', 1200);\n"), 2000)), statepkg.WriteOptions{})
	if err != nil {
		t.Fatalf("write component: %v", err)
	}
	return &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: "shop/seed", Revision: revision, Message: message,
		CreatedAt: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Components: []statepkg.Component{comp}}, mem
}

// summarised is a one-component version of content whose capture
// recorded sum, as helm state diff and the console's compare read it.
func summarised(t testing.TB, content string, sum statepkg.Summary) (*statepkg.Manifest, *statepkg.MemoryStore) {
	t.Helper()
	mem := statepkg.NewMemoryStore()
	comp, _, err := statepkg.WriteComponent(context.Background(), mem,
		statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom"}, bytes.NewReader([]byte(content)), statepkg.WriteOptions{})
	if err != nil {
		t.Fatalf("write component: %v", err)
	}
	if comp.Meta, err = statepkg.SetSummary(comp.Meta, sum); err != nil {
		t.Fatal(err)
	}
	return &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: "shop/seed", Components: []statepkg.Component{comp}}, mem
}

// must passes v on, and stops the test (through a panic the testing
// package reports) on a fixture error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("fixture: %v", err))
	}
	return v
}

func must3[A, B any](_ A, _ B, err error) {
	if err != nil {
		panic(fmt.Sprintf("fixture: %v", err))
	}
}
