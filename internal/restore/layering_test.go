package restore_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The restore core sits below the in-cluster layer: internal/kube builds on
// internal/restore, never the other way round, so a driver can be used (and
// tested) without the executor, hooks or records. `go list -deps` sees every
// import, direct or not, of the non-test code.
func TestLayering_NoRestorePackageImportsInternalKube(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go tool is needed to list the packages' imports: %v", err)
	}
	const module = "github.com/unikubehq/terraform-provider-unikube/"
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", "-f",
		`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./... in internal/restore: %v\n%s", err, out)
	}
	isKube := func(p string) bool {
		return p == module+"internal/kube" || strings.HasPrefix(p, module+"internal/kube/")
	}
	// Every package in the list is a dependency of some internal/restore
	// package; a kube package among them is the break, its importers the
	// place to fix.
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		if isKube(pkg) {
			continue
		}
		for imp := range strings.FieldsSeq(imports) {
			if isKube(imp) {
				t.Errorf("%s imports %s, which puts the in-cluster layer under the restore core (move the code next to its driver)", pkg, imp)
			}
		}
	}
}
