package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func must3[A, B any](a A, _ B, err error) A {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return a
}

// TestAccess_Authentication covers missing, unknown and revoked tokens.
func TestAccess_Authentication(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	cases := map[string]*client.Client{
		"no token":      srv.Client(t, ""),
		"unknown token": srv.Client(t, "uks_not-a-real-token"),
	}
	tok := srv.UserToken(t, "soon-revoked", "bob")
	revoked := srv.Client(t, tok)
	if _, err := revoked.Whoami(ctx); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if err := admin.RevokeToken(ctx, "soon-revoked"); err != nil {
		t.Fatal(err)
	}
	cases["revoked token"] = revoked
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := c.ListProjects(ctx); !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("want 401, got %v", err)
			}
			if _, err := c.Chunks("p", "s").Has(ctx, statepkg.DigestBytes(nil)); !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("HEAD chunk: want 401, got %v", err)
			}
		})
	}
	// A user may not mint tokens for someone else or for groups they lack.
	bob := srv.Client(t, srv.UserToken(t, "bob-2", "bob", "devs"))
	if _, err := bob.CreateToken(ctx, client.TokenRequest{Name: "evil", User: "alice"}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("token for another user: want 403, got %v", err)
	}
	if _, err := bob.CreateToken(ctx, client.TokenRequest{Name: "evil", Groups: []string{"admins"}}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("token with a foreign group: want 403, got %v", err)
	}
	if _, err := bob.CreateToken(ctx, client.TokenRequest{Name: "bob-ci", Groups: []string{"devs"}}); err != nil {
		t.Fatalf("own token: %v", err)
	}
	if err := bob.RevokeToken(ctx, "tok-admin-never-existed"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	// A user names only their own tokens: another's token, the admin's
	// included, is as unknown as one that never existed.
	if err := bob.RevokeToken(ctx, "admin"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revoke the admin token as a user: want 404, got %v", err)
	}
}

// TestAccess_StateGroupAndTokenGrants: a state grant adds to the project
// grant; group: and token: subjects work.
func TestAccess_StateGroupAndTokenGrants(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "a", ""))
	must(admin.CreateState(ctx, "p", "b", ""))
	m, mem := makeVersion(t, "", "1", randomBytes(128<<10, 9))
	must3(admin.PushVersion(ctx, "p", "a", "v1", m, mem, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, "p", "b", "v1", m, mem, client.TransferOptions{}))

	// Viewer on the project, maintainer on state a only.
	must(admin.PutGrant(ctx, "p", "", "user:val", client.RoleViewer))
	must(admin.PutGrant(ctx, "p", "a", "user:val", client.RoleMaintainer))
	val := srv.Client(t, srv.UserToken(t, "val", "val"))
	if _, err := val.CommitVersion(ctx, "p", "a", "v2", m); err != nil {
		t.Fatalf("maintainer on state a: %v", err)
	}
	if _, err := val.CommitVersion(ctx, "p", "b", "v2", m); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("viewer on state b: want 403, got %v", err)
	}
	if _, err := val.GetVersion(ctx, "p", "b", "v1"); err != nil {
		t.Fatalf("viewer on project shows b: %v", err)
	}

	// Only a state grant: the state is visible, the project's other states are not.
	must(admin.PutGrant(ctx, "p", "b", "user:sam", client.RoleViewer))
	sam := srv.Client(t, srv.UserToken(t, "sam", "sam"))
	if sts := must(sam.ListStates(ctx, "p")); len(sts) != 1 || sts[0].Name != "b" {
		t.Fatalf("states visible to sam: %+v", sts)
	}
	if _, err := sam.GetVersion(ctx, "p", "a", "v1"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("sam on a: want 403, got %v", err)
	}

	// A group grant.
	must(admin.PutGrant(ctx, "p", "", "group:devs", client.RoleApplier))
	dev := srv.Client(t, srv.UserToken(t, "dev", "dora", "devs"))
	if _, _, err := dev.GetManifest(ctx, "p", "a", "v1"); err != nil {
		t.Fatalf("group applier download: %v", err)
	}
	// A token grant, naming the token's user (it may precede the token).
	must(admin.PutGrant(ctx, "p", "", "token:robot:ci-bot", client.RoleMaintainer))
	ci := srv.Client(t, srv.UserToken(t, "ci-bot", "robot"))
	if _, err := ci.CommitVersion(ctx, "p", "b", "from-ci", m); err != nil {
		t.Fatalf("token maintainer: %v", err)
	}
	// Removing the grant takes effect at once.
	if err := admin.DeleteGrant(ctx, "p", "", "token:robot:ci-bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.CommitVersion(ctx, "p", "b", "from-ci-2", m); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("after grant removal: want 403, got %v", err)
	}
	if ps := must(ci.ListProjects(ctx)); len(ps) != 0 {
		t.Fatalf("projects without grants: %+v", ps)
	}
}

// TestAccess_JobToken: a job token downloads only its version and stops
// working when it expires.
func TestAccess_JobToken(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	must(admin.CreateState(ctx, "p", "other", ""))
	m1, mem1 := makeVersion(t, "", "1", randomBytes(200<<10, 11))
	m2, mem2 := makeVersion(t, "", "2", randomBytes(200<<10, 12))
	must3(admin.PushVersion(ctx, "p", "s", "v1", m1, mem1, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, "p", "s", "v2", m2, mem2, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, "p", "other", "v1", m1, mem1, client.TransferOptions{}))

	must(admin.PutGrant(ctx, "p", "", "user:ann", client.RoleApplier))
	ann := srv.Client(t, srv.UserToken(t, "ann", "ann"))
	jt := must(ann.CreateJobToken(ctx, "p", "s", "v1", 2*time.Second))
	job := srv.Client(t, jt.Token)

	if v, err := job.GetVersion(ctx, "p", "s", "v1"); err != nil || v.Digest != jt.Digest {
		t.Fatalf("job token show its version: %v", err)
	}
	gm, _, err := job.GetManifest(ctx, "p", "s", jt.Digest)
	if err != nil {
		t.Fatalf("job token manifest: %v", err)
	}
	if _, err := job.DownloadChunks(ctx, "p", "s", gm, statepkg.NewMemoryStore(), client.TransferOptions{}); err != nil {
		t.Fatalf("job token download: %v", err)
	}
	var own bytes.Buffer
	if err := statepkg.ReadComponent(ctx, job.Chunks("p", "s"), gm.Components[0], &own, statepkg.ReadOptions{}); err != nil {
		t.Fatalf("job token restore through batches: %v", err)
	}
	if ok, err := job.Chunks("p", "s").Has(ctx, m1.Components[0].Chunks[0].Digest); err != nil || !ok {
		t.Fatalf("job token HEAD own chunk: %v %v", ok, err)
	}
	if ok, err := job.Chunks("p", "s").Has(ctx, m2.Components[0].Chunks[0].Digest); err != nil || ok {
		t.Fatalf("job token HEAD other version's chunk: %v %v, want false", ok, err)
	}
	denied := map[string]func() error{
		"other version manifest": func() error { _, _, err := job.GetManifest(ctx, "p", "s", "v2"); return err },
		"other version chunk":    func() error { _, err := job.Chunks("p", "s").Get(ctx, m2.Components[0].Chunks[0].Digest); return err },
		"other state":            func() error { _, _, err := job.GetManifest(ctx, "p", "other", "v1"); return err },
		"other version chunks via batch": func() error {
			return job.Chunks("p", "s").GetBatch(ctx, digestsOf(m2), func(int, []byte) error { return nil })
		},
		"own and other version's chunks via batch": func() error {
			return job.Chunks("p", "s").GetBatch(ctx, append(digestsOf(m1), digestsOf(m2)[0]), func(int, []byte) error {
				return errors.New("a chunk was sent before access to all was checked")
			})
		},
		"other state's chunks via batch": func() error {
			return job.Chunks("p", "other").GetBatch(ctx, digestsOf(m1), func(int, []byte) error { return nil })
		},
		"list versions":  func() error { _, err := job.ListVersions(ctx, "p", "s", client.ListVersionsOptions{}); return err },
		"create version": func() error { _, err := job.CommitVersion(ctx, "p", "s", "x", m1); return err },
		"upload chunk": func() error {
			d, _ := mem1.Get(ctx, m1.Components[0].Chunks[0].Digest)
			return job.Chunks("p", "s").Put(ctx, m1.Components[0].Chunks[0].Digest, d)
		},
		"mint tokens":     func() error { _, err := job.CreateToken(ctx, client.TokenRequest{Name: "x"}); return err },
		"mint job tokens": func() error { _, err := job.CreateJobToken(ctx, "p", "s", "v1", 0); return err },
	}
	for name, f := range denied {
		if err := f(); !errors.Is(err, client.ErrForbidden) && !errors.Is(err, client.ErrNotFound) {
			t.Errorf("job token %s: want 403/404, got %v", name, err)
		}
	}
	time.Sleep(time.Until(jt.ExpiresAt) + 50*time.Millisecond)
	if _, _, err := job.GetManifest(ctx, "p", "s", "v1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("expired job token: want 401, got %v", err)
	}
}

// digestsOf lists the chunk digests of m's first component.
func digestsOf(m *statepkg.Manifest) []string {
	var out []string
	for _, ch := range m.Components[0].Chunks {
		out = append(out, ch.Digest)
	}
	return out
}
