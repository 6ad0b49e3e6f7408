package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// onBothBackends runs fn on the embedded default and on PostgreSQL + S3.
func onBothBackends(t *testing.T, fn func(t *testing.T, srv *platformtest.Server), opts ...platformtest.Option) {
	t.Run("sqlite-fs", func(t *testing.T) { fn(t, platformtest.Start(t, opts...)) })
	t.Run("postgres-s3", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: skipping PostgreSQL + S3")
		}
		fn(t, platformtest.Start(t, append([]platformtest.Option{platformtest.WithPostgresS3()}, opts...)...))
	})
}

// statusOf turns a client result into the HTTP status it came from.
func statusOf(err error) int {
	var e *client.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &e):
		return e.Status
	}
	return -1
}

// headAs sends HEAD .../chunks/{digest} with token and returns the status.
func headAs(t *testing.T, srv *platformtest.Server, token, project, state, digest string) int {
	t.Helper()
	code, _, _ := rawAs(t, srv, token, http.MethodHead, "/api/v1/projects/"+project+"/states/"+state+"/chunks/"+digest, nil)
	return code
}

// TestChunks_KnowingADigestGrantsNothing: Bob, who owns a project of his own
// and has no grant in Ann's, learns the digests of Ann's chunks (a manifest
// seen once). No path lets him confirm or read them: a commit naming them
// answers 409 listing them all (upload the bytes), HEAD in his state
// answers 404 as for a chunk nobody stores, GET and batch downloads are
// refused in his state and in Ann's, and Ann's read-back upload stays hers.
func TestChunks_KnowingADigestGrantsNothing(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		annTok, bobTok := srv.UserToken(t, "ann", "ann"), srv.UserToken(t, "bob", "bob")
		ann, bob := srv.Client(t, annTok), srv.Client(t, bobTok)
		must(ann.CreateProject(ctx, "ann", ""))
		must(ann.CreateState(ctx, "ann", "db", ""))
		must(bob.CreateProject(ctx, "bob", ""))
		must(bob.CreateState(ctx, "bob", "db", ""))

		secret := randomBytes(2<<20, 31)
		m, mem := makeVersion(t, "ann/db", "1", secret)
		must3(ann.PushVersion(ctx, "ann", "db", "v1", m, mem, client.TransferOptions{}))
		described, describedZ := statepkg.EncodeChunk([]byte(`{"name":"db","password-hint":"ann's"}`))
		if err := ann.Chunks("ann", "db").PutForReadBack(ctx, described, describedZ); err != nil {
			t.Fatalf("ann's read-back upload: %v", err)
		}
		stolen := digestsOf(m)

		// Commit in his own state naming Ann's chunks: 409, all of them missing.
		bm := *m
		bm.State = "bob/db"
		_, err := bob.CommitVersion(ctx, "bob", "db", "stolen", &bm)
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
			t.Fatalf("commit naming foreign chunks: want 409, got %v", err)
		}
		want := slices.Sorted(slices.Values(stolen))
		if got := slices.Sorted(slices.Values(apiErr.Missing)); !slices.Equal(got, want) {
			t.Fatalf("commit naming foreign chunks: missing lists %d chunks, want all %d", len(got), len(want))
		}
		if _, err := bob.GetVersion(ctx, "bob", "db", "stolen"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("the refused commit made a version: %v", err)
		}

		for _, d := range append(stolen, described) {
			// HEAD: the same 404 as for a chunk nobody stores.
			if code := headAs(t, srv, bobTok, "bob", "db", d); code != http.StatusNotFound {
				t.Errorf("HEAD of a foreign chunk in bob's state: %d, want 404", code)
			}
			if code := headAs(t, srv, bobTok, "ann", "db", d); code != http.StatusForbidden {
				t.Errorf("HEAD in ann's state: %d, want 403", code)
			}
			// GET, in his state and in Ann's.
			if _, err := bob.Chunks("bob", "db").Get(ctx, d); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("GET of a foreign chunk in bob's state: want 404, got %v", err)
			}
			if _, err := bob.Chunks("ann", "db").Get(ctx, d); !errors.Is(err, client.ErrForbidden) {
				t.Errorf("GET in ann's state: want 403, got %v", err)
			}
		}
		nobody := strings.Repeat("0", 64)
		if code := headAs(t, srv, bobTok, "bob", "db", "sha256:"+nobody); code != http.StatusNotFound {
			t.Errorf("HEAD of a chunk nobody stores: %d, want 404", code)
		}

		// Batch downloads, in his state (404 listing them) and in Ann's (403).
		body, _ := json.Marshal(map[string]any{"digests": append(stolen, described)})
		code, _, missing := rawAs(t, srv, bobTok, http.MethodPost, "/api/v1/projects/bob/states/db/chunks:batch", body)
		if code != http.StatusNotFound || len(missing) != len(stolen)+1 {
			t.Errorf("batch of foreign chunks in bob's state: %d listing %d, want 404 listing %d", code, len(missing), len(stolen)+1)
		}
		if code, _, _ := rawAs(t, srv, bobTok, http.MethodPost, "/api/v1/projects/ann/states/db/chunks:batch", body); code != http.StatusForbidden {
			t.Errorf("batch in ann's state: %d, want 403", code)
		}

		// Uploading other bytes under Ann's digest proves nothing: refused,
		// and the commit still lists the chunk.
		if err := bob.Chunks("bob", "db").Put(ctx, stolen[0], describedZ); statusOf(err) != http.StatusBadRequest {
			t.Errorf("upload of other bytes under a foreign digest: want 400, got %v", err)
		}
		if _, err := bob.CommitVersion(ctx, "bob", "db", "stolen", &bm); !errors.As(err, &apiErr) || !slices.Contains(apiErr.Missing, stolen[0]) {
			t.Errorf("commit after a refused upload: want 409 listing the chunk, got %v", err)
		}

		// With the bytes in hand Bob may store the same content: he uploads
		// every chunk (proving he has them), the store keeps one copy.
		_, stats, err := bob.PushVersion(ctx, "bob", "db", "own", &bm, mem, client.TransferOptions{})
		if err != nil || stats.Transferred != len(stolen) {
			t.Fatalf("bob pushing content he has: %v, sent %d of %d chunks, want all", err, stats.Transferred, len(stolen))
		}
		if got := readAll(t, bob.Chunks("bob", "db"), &bm); string(got) != string(secret) {
			t.Fatal("bob's own version reads back different content")
		}
		// Ann's read-back upload is still not his to read.
		if _, err := bob.Chunks("bob", "db").Get(ctx, described); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("GET of ann's read-back upload in bob's state: want 404, got %v", err)
		}
	})
}

// TestChunks_DedupWithinWhatTheCallerMayRead: what a user may read is never
// uploaded twice: a second version of the same state sends only its new
// chunks, and the same content pushed to a state of another project the
// user may also read sends nothing. A viewer (who may not read chunks) of
// the first project has to upload everything.
func TestChunks_DedupWithinWhatTheCallerMayRead(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		admin := srv.Admin(t)
		must(admin.CreateProject(ctx, "shop", ""))
		must(admin.CreateState(ctx, "shop", "seed", ""))
		must(admin.PutGrant(ctx, "shop", "", "user:ann", client.RoleMaintainer))
		must(admin.PutGrant(ctx, "shop", "", "user:vic", client.RoleViewer))
		annTok := srv.UserToken(t, "ann", "ann")
		ann := srv.Client(t, annTok)
		vic := srv.Client(t, srv.UserToken(t, "vic", "vic"))

		base := randomBytes(3<<20, 41)
		m1, mem1 := makeVersion(t, "shop/seed", "1", base)
		_, st1, err := ann.PushVersion(ctx, "shop", "seed", "v1", m1, mem1, client.TransferOptions{})
		if err != nil || st1.Transferred != len(digestsOf(m1)) {
			t.Fatalf("first push: %v, sent %d of %d", err, st1.Transferred, len(digestsOf(m1)))
		}

		// A second version sharing most of its content: only new chunks go.
		m2, mem2 := makeVersion(t, "shop/seed", "2", append(append([]byte{}, base...), randomBytes(1<<20, 42)...))
		newChunks := 0
		for _, d := range digestsOf(m2) {
			if !slices.Contains(digestsOf(m1), d) {
				newChunks++
			}
		}
		if newChunks == len(digestsOf(m2)) {
			t.Fatal("test setup: the versions share no chunk")
		}
		_, st2, err := ann.PushVersion(ctx, "shop", "seed", "v2", m2, mem2, client.TransferOptions{})
		if err != nil || st2.Transferred != newChunks {
			t.Fatalf("second version: %v, sent %d chunks, want only the %d new ones", err, st2.Transferred, newChunks)
		}

		// Another project of Ann's: the content she can read in shop/seed
		// is not sent again, and HEAD there says so before any commit.
		must(ann.CreateProject(ctx, "lab", ""))
		must(ann.CreateState(ctx, "lab", "copy", ""))
		if code := headAs(t, srv, annTok, "lab", "copy", digestsOf(m1)[0]); code != http.StatusOK {
			t.Fatalf("HEAD in ann's other project of a chunk she can read: %d, want 200", code)
		}
		mc := *m1
		mc.State = "lab/copy"
		_, st3, err := ann.PushVersion(ctx, "lab", "copy", "v1", &mc, mem1, client.TransferOptions{})
		if err != nil || st3.Transferred != 0 {
			t.Fatalf("same content in another readable project: %v, sent %d chunks, want none", err, st3.Transferred)
		}
		if got := readAll(t, ann.Chunks("lab", "copy"), &mc); string(got) != string(base) {
			t.Fatal("the deduplicated version reads back different content")
		}

		// A viewer of shop may not read its chunks, so for her they count
		// as not uploaded.
		must(vic.CreateProject(ctx, "vics", ""))
		must(vic.CreateState(ctx, "vics", "copy", ""))
		mv := *m1
		mv.State = "vics/copy"
		_, st4, err := vic.PushVersion(ctx, "vics", "copy", "v1", &mv, mem1, client.TransferOptions{})
		if err != nil || st4.Transferred != len(digestsOf(m1)) {
			t.Fatalf("viewer pushing the same content: %v, sent %d chunks, want all %d", err, st4.Transferred, len(digestsOf(m1)))
		}
	})
}

// TestChunks_ProjectUploadQuota: with a quota, an upload that would take a
// project past it answers 507 naming the project, its usage and the quota;
// a chunk the project already holds costs nothing again, and other
// projects are not affected.
func TestChunks_ProjectUploadQuota(t *testing.T) {
	a, az := statepkg.EncodeChunk(randomBytes(100_000, 51))
	b, bz := statepkg.EncodeChunk(randomBytes(100_000, 52))
	c, cz := statepkg.EncodeChunk(randomBytes(100_000, 53))
	quota := int64(len(az) + len(bz) + len(cz)/2)
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		projectUploadQuota(t, srv, quota, [3]string{a, b, c}, [3][]byte{az, bz, cz})
	}, platformtest.WithOptions(func(o *platformtest.Options) { o.ProjectUploadQuota = quota }))
}

func projectUploadQuota(t *testing.T, srv *platformtest.Server, quota int64, d [3]string, z [3][]byte) {
	ctx := context.Background()
	a, b, c := d[0], d[1], d[2]
	az, bz, cz := z[0], z[1], z[2]
	admin := srv.Admin(t)
	for _, p := range []string{"small", "other"} {
		must(admin.CreateProject(ctx, p, ""))
		must(admin.CreateState(ctx, p, "s", ""))
		must(admin.CreateState(ctx, p, "t", ""))
	}
	put := func(project, state, d string, z []byte) error { return admin.Chunks(project, state).Put(ctx, d, z) }

	if err := put("small", "s", a, az); err != nil {
		t.Fatalf("first chunk under the quota: %v", err)
	}
	if err := put("small", "s", b, bz); err != nil {
		t.Fatalf("second chunk under the quota: %v", err)
	}
	err := put("small", "s", c, cz)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusInsufficientStorage {
		t.Fatalf("chunk past the quota: want 507, got %v", err)
	}
	for _, want := range []string{"project small", itoa(len(az) + len(bz)), itoa(int(quota)), "--project-upload-quota"} {
		if !strings.Contains(apiErr.Message, want) {
			t.Errorf("quota message %q does not name %q", apiErr.Message, want)
		}
	}
	if code := headAs(t, srv, srv.AdminToken, "other", "s", c); code != http.StatusNotFound {
		t.Errorf("the refused chunk was stored: HEAD %d", code)
	}
	// Held already: uploading again, or to another state of the project, is free.
	if err := put("small", "s", a, az); err != nil {
		t.Fatalf("re-upload of a held chunk: %v", err)
	}
	if err := put("small", "t", b, bz); err != nil {
		t.Fatalf("a held chunk to another state of the project: %v", err)
	}
	if err := put("other", "s", c, cz); err != nil {
		t.Fatalf("another project is not affected: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
