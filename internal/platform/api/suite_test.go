package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/api"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestAPI_Suite runs the same end-to-end API checks on the embedded default
// (SQLite + filesystem) and on the scale-out configuration (PostgreSQL + S3).
func TestAPI_Suite(t *testing.T) {
	backends := []struct {
		name string
		opts []platformtest.Option
	}{
		{"sqlite-fs", nil},
		{"postgres-s3", []platformtest.Option{platformtest.WithPostgresS3()}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name != "sqlite-fs" && testing.Short() {
				t.Skip("-short: skipping PostgreSQL + S3")
			}
			srv := platformtest.Start(t, b.opts...)
			runSuite(t, srv)
		})
	}
}

// must returns v or stops the test by panicking with err (Go has no way to
// pass a multi-value call plus t to a helper).
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func runSuite(t *testing.T, srv *platformtest.Server) {
	ctx := context.Background()
	admin := srv.Admin(t)

	if err := admin.Ready(ctx); err != nil {
		t.Fatalf("readyz: %v", err)
	}
	who := must(admin.Whoami(ctx))
	if !who.Admin {
		t.Fatalf("whoami: want admin, got %+v", who)
	}

	// Projects and states.
	must(admin.CreateProject(ctx, "shop", "the shop"))
	if _, err := admin.CreateProject(ctx, "shop", ""); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("duplicate project: want ErrConflict, got %v", err)
	}
	must(admin.CreateState(ctx, "shop", "seed", "seed data"))
	if st := must(admin.GetState(ctx, "shop", "seed")); st.Description != "seed data" {
		t.Fatalf("state: %+v", st)
	}
	must(admin.UpdateState(ctx, "shop", "seed", "new description"))
	if ps := must(admin.ListProjects(ctx)); len(ps) != 1 || ps[0].Name != "shop" {
		t.Fatalf("projects: %+v", ps)
	}
	if _, err := admin.GetState(ctx, "shop", "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing state: want ErrNotFound, got %v", err)
	}

	// A maintainer pushes a version: the commit first answers 409 listing
	// every chunk, then succeeds once they are uploaded.
	must(admin.PutGrant(ctx, "shop", "", "user:mia", client.RoleMaintainer))
	mia := srv.Client(t, srv.UserToken(t, "mia-laptop", "mia"))
	data := randomBytes(3<<20, 1)
	m, mem := makeVersion(t, "shop/seed", "1.0.0", data)
	_, err := mia.CommitVersion(ctx, "shop", "seed", "v1", m)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrConflict) || len(apiErr.Missing) != len(m.Components[0].Chunks) {
		t.Fatalf("commit without chunks: want 409 listing %d chunks, got %v", len(m.Components[0].Chunks), err)
	}
	v1, stats, err := mia.PushVersion(ctx, "shop", "seed", "v1", m, mem, client.TransferOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if stats.Transferred != len(m.Components[0].Chunks) || v1.Tag != "v1" || v1.Candidate || v1.Size != int64(len(data)) || v1.Revision != "1.0.0" {
		t.Fatalf("push: stats %+v version %+v", stats, v1)
	}
	enc, _ := m.Encode()
	if v1.Digest != statepkg.ManifestDigest(enc) {
		t.Fatalf("digest %s, want %s", v1.Digest, statepkg.ManifestDigest(enc))
	}
	// Pushing the same again is harmless: nothing uploaded, same version.
	again, stats, err := mia.PushVersion(ctx, "shop", "seed", "v1", m, mem, client.TransferOptions{})
	if err != nil || again.Digest != v1.Digest || stats.Transferred != 0 {
		t.Fatalf("re-push: %v %+v %+v", err, again, stats)
	}
	// The same tag for other content is refused.
	m2, mem2 := makeVersion(t, "shop/seed", "1.1.0", append(randomBytes(1<<20, 2), data[:1<<20]...))
	if _, _, err := mia.PushVersion(ctx, "shop", "seed", "v1", m2, mem2, client.TransferOptions{}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("reuse tag: want ErrConflict, got %v", err)
	}

	// Resolve and download.
	latest := must(admin.GetVersion(ctx, "shop", "seed", "@latest"))
	if latest.Digest != v1.Digest {
		t.Fatalf("@latest = %s, want %s", latest.Digest, v1.Digest)
	}
	byDigest := must(admin.GetVersion(ctx, "shop", "seed", v1.Digest))
	if byDigest.Tag != "v1" {
		t.Fatalf("by digest: %+v", byDigest)
	}
	gm, gd, err := mia.GetManifest(ctx, "shop", "seed", "v1")
	if err != nil || gd != v1.Digest {
		t.Fatalf("manifest: %v %s", err, gd)
	}
	local := statepkg.NewMemoryStore()
	if _, err := mia.DownloadChunks(ctx, "shop", "seed", gm, local, client.TransferOptions{}); err != nil {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(readAll(t, local, gm), data) {
		t.Fatal("downloaded data differs")
	}
	// Streaming straight through the client as a ChunkStore works too.
	if !bytes.Equal(readAll(t, mia.Chunks("shop", "seed"), gm), data) {
		t.Fatal("streamed data differs")
	}

	// Batch download: exact bytes for every chunk, in the order asked, with
	// repeats, and a list longer than one request may carry (the client
	// splits it).
	checkBatch(t, mia.Chunks("shop", "seed"), mem, m)

	// Candidates: @new-candidate, @candidate, promote, retag, prune.
	cand, _, err := mia.PushVersion(ctx, "shop", "seed", "@new-candidate", m2, mem2, client.TransferOptions{})
	if err != nil || !cand.Candidate || !statepkg.IsCandidate(cand.Tag) {
		t.Fatalf("candidate: %v %+v", err, cand)
	}
	if got := must(admin.GetVersion(ctx, "shop", "seed", "@candidate")); got.Tag != cand.Tag {
		t.Fatalf("@candidate = %s, want %s", got.Tag, cand.Tag)
	}
	if got := must(admin.GetVersion(ctx, "shop", "seed", "@latest")); got.Tag != "v1" {
		t.Fatalf("@latest with a newer candidate = %s, want v1", got.Tag)
	}
	promoted := must(mia.Promote(ctx, "shop", "seed", "@candidate"))
	if promoted.Candidate || statepkg.IsCandidate(promoted.Tag) {
		t.Fatalf("promoted: %+v", promoted)
	}
	if got := must(admin.GetVersion(ctx, "shop", "seed", "@latest")); got.Tag != promoted.Tag {
		t.Fatalf("@latest after promote = %s, want %s", got.Tag, promoted.Tag)
	}
	retagged := must(mia.Retag(ctx, "shop", "seed", promoted.Tag, "v2"))
	if retagged.Tag != "v2" || retagged.Digest != cand.Digest {
		t.Fatalf("retag: %+v", retagged)
	}
	if _, err := mia.Retag(ctx, "shop", "seed", "v2", "v1"); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("retag onto a taken tag: want ErrConflict, got %v", err)
	}
	for i := 0; i < 3; i++ {
		must(mia.Retag(ctx, "shop", "seed", must(mia.CommitVersion(ctx, "shop", "seed", "@new-candidate", m)).Tag, "[cand]-c"+string(rune('a'+i))))
	}
	pruned := must(mia.PruneCandidates(ctx, "shop", "seed", 1))
	if len(pruned) != 2 {
		t.Fatalf("prune kept 1 of 3, deleted %d", len(pruned))
	}
	if vs := must(admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{})); len(vs) != 3 {
		t.Fatalf("versions after prune: %d, want 3 (v1, v2, one candidate)", len(vs))
	}
	if vs := must(admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{Candidates: "only"})); len(vs) != 1 {
		t.Fatalf("candidates after prune: %d", len(vs))
	}

	// Tokens: list, revoke.
	toks := must(admin.ListTokens(ctx, ""))
	if len(toks) < 2 {
		t.Fatalf("tokens: %+v", toks)
	}
	if err := mia.RevokeToken(ctx, "mia-laptop"); err != nil {
		t.Fatalf("revoke own token: %v", err)
	}
	if _, err := mia.Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("revoked token: want ErrUnauthorized, got %v", err)
	}

	// Scripts and runs.
	spec := client.ScriptSpec{Description: "anonymise", Image: "python:3.12-slim", Interpreter: "python", Body: "print('hi')",
		Variables:   []client.Variable{{Name: "DB", Required: true}, {Name: "PASSWORD", Sensitive: true}, {Name: "MODE", Default: "fast"}},
		Credentials: []client.Credential{{Secret: "db-creds", Keys: []string{"password"}}}, ServiceAccount: "runner"}
	sc := must(admin.PutScript(ctx, "shop", "anonymise", spec))
	if sc.Author != "admin" || sc.Interpreter != "python" || len(sc.Variables) != 3 {
		t.Fatalf("script: %+v", sc)
	}
	spec.Body = "print('v2')"
	sc2 := must(admin.PutScript(ctx, "shop", "anonymise", spec))
	if !sc2.CreatedAt.Equal(sc.CreatedAt) || sc2.Body != "print('v2')" {
		t.Fatalf("script update: %+v", sc2)
	}
	if _, err := admin.CreateRun(ctx, "shop", "anonymise", map[string]string{}, ""); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("run without required variable: want ErrBadRequest, got %v", err)
	}
	run := must(admin.CreateRun(ctx, "shop", "anonymise", map[string]string{"DB": "shop", "PASSWORD": "hunter2"}, "kind/default"))
	if run.Status != client.RunPending || run.Variables["PASSWORD"] == "hunter2" || run.Variables["MODE"] != "fast" {
		t.Fatalf("run: %+v", run)
	}
	now := time.Now().UTC()
	code := 1
	trace := "Traceback (most recent call last):\n  ...\nValueError: boom"
	must(admin.UpdateRun(ctx, "shop", "anonymise", run.ID, client.RunUpdate{Status: client.RunFailed, StartedAt: &now, FinishedAt: &now, ExitCode: &code, StackTrace: &trace}))
	got := must(admin.GetRun(ctx, "shop", "anonymise", run.ID))
	if got.Status != client.RunFailed || got.ExitCode == nil || *got.ExitCode != 1 || got.StackTrace != trace {
		t.Fatalf("run after update: %+v", got)
	}
	if runs := must(admin.ListRuns(ctx, "shop", "anonymise", 0)); len(runs) != 1 {
		t.Fatalf("runs: %+v", runs)
	}

	// Garbage collection: after deleting v1, its unique chunks go (grace 0);
	// the chunks v2 shares with it stay.
	before := must(admin.CollectGarbage(ctx, 0, true))
	if before.Deleted != 0 {
		t.Fatalf("gc before delete: %+v", before)
	}
	if err := admin.DeleteVersion(ctx, "shop", "seed", "v1"); err != nil {
		t.Fatal(err)
	}
	must(admin.PruneCandidates(ctx, "shop", "seed", 0)) // the last candidate also uses v1's manifest
	res := must(admin.CollectGarbage(ctx, 0, false))
	if res.Deleted == 0 {
		t.Fatalf("gc after delete: %+v", res)
	}
	v2m, _, err := admin.GetManifest(ctx, "shop", "seed", "v2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DownloadChunks(ctx, "shop", "seed", v2m, statepkg.NewMemoryStore(), client.TransferOptions{}); err != nil {
		t.Fatalf("v2 lost chunks to gc: %v", err)
	}

	// The served OpenAPI document is the committed one.
	doc := must(admin.OpenAPI(ctx))
	committed, err := os.ReadFile(filepath.Join("..", "..", "..", "api", "openapi.json"))
	if err != nil {
		t.Fatalf("read api/openapi.json: %v (regenerate: UPDATE_OPENAPI=1 go test ./internal/platform/api -run TestOpenAPI)", err)
	}
	if !bytes.Equal(doc, committed) || !bytes.Equal(doc, api.OpenAPI()) {
		t.Fatal("api/openapi.json differs from the served document: run UPDATE_OPENAPI=1 go test ./internal/platform/api -run TestOpenAPI")
	}

	// Delete cascades.
	if err := admin.DeleteProject(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GetProject(ctx, "shop"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted project: %v", err)
	}
}

// TestOpenAPI_DocsMatchServer keeps api/openapi.json identical to the
// generated document (UPDATE_OPENAPI=1 rewrites it).
func TestOpenAPI_DocsMatchServer(t *testing.T) {
	path := filepath.Join("..", "..", "..", "api", "openapi.json")
	doc := api.OpenAPI()
	if os.Getenv("UPDATE_OPENAPI") != "" {
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, doc) {
		t.Fatal("api/openapi.json is stale: run UPDATE_OPENAPI=1 go test ./internal/platform/api -run TestOpenAPI")
	}
}
