package postgres

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Defence in depth: even a meta-command the filter let through is refused
// by psql itself, which the restore puts in restricted mode with a key the
// script cannot know.
func TestPsql_RestrictedModeRefusesMetaCommandsTheFilterMissed(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	bin, err := tool("psql", map[string]string{OptBinDir: pg.BinDir})
	if err != nil {
		t.Fatal(err)
	}
	if !psqlRestricts(ctx, bin) {
		t.Skipf("%s has no \\restrict (needs 13.22, 14.19, 15.14, 16.10, 17.6 or later)", bin)
	}
	key, err := restrictKey()
	if err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(t.TempDir(), "pwned")
	cmd := exec.CommandContext(ctx, bin, "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
	e, _ := parseEndpoint(pg.URL("postgres"))
	cmd.Env = e.env()
	cmd.Stdin = strings.NewReader("\\restrict " + key + "\nSELECT 1;\n\\unrestrict guessed\n\\! touch " + canary + "\n")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("psql accepted the script: %s", out)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("psql ran \\! in restricted mode")
	}
	t.Logf("psql: %s", out)
}
