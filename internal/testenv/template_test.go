package testenv_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestStart_WithEmptyCacheInitialisesThenReusesTemplate covers both paths of
// data-directory creation: initdb/mariadb-install-db on an empty cache (as on
// a fresh machine), then a copy of the template they left behind.
// Not parallel: it points ToolsDir at a fresh directory through the environment.
func TestStart_WithEmptyCacheInitialisesThenReusesTemplate(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("UNIKUBE_TOOLS_DIR", cache)
	for round, what := range []string{"fresh", "from template"} {
		pg := testenv.StartPostgres(t)
		conn, err := pgx.Connect(t.Context(), pg.URL("postgres"))
		if err != nil {
			t.Fatalf("%s postgres: connect: %v", what, err)
		}
		conn.Close(context.WithoutCancel(t.Context()))

		m := testenv.StartMariaDB(t)
		db, err := sql.Open("mysql", m.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatalf("%s mariadb: ping: %v", what, err)
		}
		db.Close()

		if round == 0 {
			for _, kind := range []string{"postgres-*", "mariadb-*"} {
				m, _ := filepath.Glob(filepath.Join(cache, "templates", kind, ".complete"))
				if len(m) != 1 {
					entries, _ := os.ReadDir(filepath.Join(cache, "templates"))
					t.Fatalf("after the first start, want one %s template, cache has %v", kind, entries)
				}
			}
		}
	}
}
