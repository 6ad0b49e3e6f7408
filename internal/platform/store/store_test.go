package store_test

import (
	"context"
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
				if err != nil || v != 4 {
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
