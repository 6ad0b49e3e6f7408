package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestOpen_MigratesOnceOnBothEngines: opening a database applies the
// migrations; opening it again (a restart, another replica) is a no-op, and
// the data is the same on SQLite and PostgreSQL.
func TestOpen_MigratesOnceOnBothEngines(t *testing.T) {
	ctx := context.Background()
	engines := map[string]func(t *testing.T) (string, string){
		"sqlite": func(t *testing.T) (string, string) { return "", t.TempDir() },
		"postgres": func(t *testing.T) (string, string) {
			if testing.Short() {
				t.Skip("-short")
			}
			pg := testenv.StartPostgres(t)
			pg.CreateDatabase(t, "meta")
			return pg.URL("meta"), ""
		},
	}
	for name, setup := range engines {
		t.Run(name, func(t *testing.T) {
			dsn, dir := setup(t)
			for i := 0; i < 2; i++ {
				s, err := store.Open(ctx, dsn, dir)
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				v, err := s.SchemaVersion(ctx)
				if err != nil || v != 5 {
					t.Fatalf("schema version %d, %v", v, err)
				}
				if i == 0 {
					now := time.Now()
					if err := s.CreateProject(ctx, store.Project{Name: "p", CreatedAt: now}, "user:a"); err != nil {
						t.Fatal(err)
					}
					if err := s.CreateState(ctx, store.State{Project: "p", Name: "s", CreatedAt: now}); err != nil {
						t.Fatal(err)
					}
					for j, tag := range []string{"a", "b", "[cand]-c"} {
						at := now.Add(time.Duration(j) * time.Second)
						err := s.CommitVersion(ctx, store.Version{Project: "p", State: "s", Tag: tag, Digest: "sha256:" + tag, CreatedAt: at, TaggedAt: at,
							Candidate: tag[0] == '['}, []byte(`{}`), []string{"sha256:x" + tag}, nil)
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				latest, err := s.NewestVersion(ctx, "p", "s", false)
				if err != nil || latest.Tag != "b" {
					t.Fatalf("latest: %+v %v", latest, err)
				}
				cand, err := s.NewestVersion(ctx, "p", "s", true)
				if err != nil || cand.Tag != "[cand]-c" {
					t.Fatalf("candidate: %+v %v", cand, err)
				}
				roles, err := s.RolesFor(ctx, "p", "s", []string{"user:a", "group:x"}, "a")
				if err != nil || len(roles) != 1 || roles[0] != "owner" {
					t.Fatalf("roles: %v %v", roles, err)
				}
				s.Close()
			}
		})
	}
}

// TestOpen_AppliesAStepNumberedBelowTheCurrentVersion: a database that has
// steps 1, 2 and 4 (step 3 merged later from a parallel branch) gets step 3
// on the next start instead of skipping it.
func TestOpen_AppliesAStepNumberedBelowTheCurrentVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "unikube.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX chunk_uploads_chunk`, `ALTER TABLE chunk_uploads DROP COLUMN size`,
		`ALTER TABLE chunk_uploads DROP COLUMN read_back`, `DELETE FROM schema_migrations WHERE version = 3`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = store.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.CreateProject(ctx, store.Project{Name: "p", CreatedAt: now}, "user:a"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateState(ctx, store.State{Project: "p", Name: "s", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordUpload(ctx, store.Upload{Project: "p", State: "s", Chunk: "sha256:" + strings.Repeat("a", 64), Size: 7, At: now}, 100); err != nil {
		t.Fatalf("step 3 not applied: %v", err)
	}
	if n, err := s.ProjectUsage(ctx, "p"); err != nil || n != 7 {
		t.Fatalf("usage %d, %v", n, err)
	}
}
