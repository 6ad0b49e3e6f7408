package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestAccess_ReadBackUploads: a capture's agent uploads each component's
// description with read_back=true and the executor, a maintainer of the
// state, reads it back before committing. Only maintainers of that state
// may; an ordinary upload stays unreadable until a version references it.
func TestAccess_ReadBackUploads(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	must(admin.CreateState(ctx, "p", "other", ""))
	must(admin.PutGrant(ctx, "p", "s", "user:mia", client.RoleMaintainer))
	must(admin.PutGrant(ctx, "p", "other", "user:mia", client.RoleMaintainer))
	must(admin.PutGrant(ctx, "p", "", "user:abe", client.RoleApplier))
	mia := srv.Client(t, srv.UserToken(t, "mia", "mia"))
	abe := srv.Client(t, srv.UserToken(t, "abe", "abe"))

	described, describedZ := statepkg.EncodeChunk([]byte(`{"name":"db","kind":"postgres"}`))
	plain, plainZ := statepkg.EncodeChunk([]byte("an ordinary chunk of a dump"))
	if err := mia.Chunks("p", "s").PutForReadBack(ctx, described, describedZ); err != nil {
		t.Fatalf("upload for read-back: %v", err)
	}
	if err := mia.Chunks("p", "s").Put(ctx, plain, plainZ); err != nil {
		t.Fatalf("upload: %v", err)
	}

	got, err := mia.Chunks("p", "s").Get(ctx, described)
	if err != nil {
		t.Fatalf("maintainer reads back the read-back upload: %v", err)
	}
	if _, err := statepkg.DecodeChunk(described, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	for name, read := range map[string]func() error{
		"maintainer, an ordinary upload": func() error { _, err := mia.Chunks("p", "s").Get(ctx, plain); return err },
		"maintainer, through another state": func() error {
			_, err := mia.Chunks("p", "other").Get(ctx, described)
			return err
		},
		"applier of the state": func() error { _, err := abe.Chunks("p", "s").Get(ctx, described); return err },
	} {
		if err := read(); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("%s: want 404 (not readable before a version references it), got %v", name, err)
		}
	}

	// Garbage collection past the grace period forgets the upload.
	if _, err := admin.CollectGarbage(ctx, 0, false); err != nil {
		t.Fatalf("gc: %v", err)
	}
	if _, err := mia.Chunks("p", "s").Get(ctx, described); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after gc: want 404, got %v", err)
	}
}
