package mysql

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Defence in depth: the client the restore starts does not run client
// commands even when they reach it (--binary-mode, --sandbox).
func TestClient_RunsNoCommandsEvenUnfiltered(t *testing.T) {
	my := testenv.StartMariaDB(t)
	my.CreateDatabase(t, "staged")
	ctx := context.Background()
	e, err := parseEndpoint(my.URL("staged"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := e.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bin, err := tool(nil, "mariadb", "mysql")
	if err != nil {
		t.Fatal(err)
	}
	cnf, rm, err := e.optionFile()
	if err != nil {
		t.Fatal(err)
	}
	defer rm()
	args, err := clientArgs(ctx, db, bin, cnf, "staged")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, attack := range []string{"\\! touch " + filepath.Join(dir, "a") + "\n", "system touch " + filepath.Join(dir, "b") + "\n", "SELECT 1;\n\\! touch " + filepath.Join(dir, "c") + "\n"} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(attack)
		out, _ := cmd.CombinedOutput()
		t.Logf("%q: %s", attack, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the client ran commands: %v", ents)
	}
}
