package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

func TestParseVars_ValuesAreTakenLiterally(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("s3cret=with;$(stuff)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := parseVars([]string{"A=x=y,z", `B="; rm -rf / #`, "C=", "D=line1\nline2"}, []string{"E=" + file, "F=-"}, strings.NewReader("from stdin\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "x=y,z", "B": `"; rm -rf / #`, "C": "", "D": "line1\nline2", "E": "s3cret=with;$(stuff)", "F": "from stdin"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}

func TestParseVars_MistakesAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		set, files []string
	}{
		{set: []string{"NOVALUE"}},
		{set: []string{"=x"}},
		{set: []string{"A=1", "A=2"}},
		{files: []string{"A=/does/not/exist"}},
	} {
		_, err := parseVars(tc.set, tc.files, strings.NewReader(""))
		if ExitCode(err) != ExitUsage {
			t.Errorf("%v %v: err %v (exit %d), want a usage error", tc.set, tc.files, err, ExitCode(err))
		}
	}
}

func TestScriptRun_BadReferenceIsAUsageError(t *testing.T) {
	root := NewRoot(strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	root.SetArgs([]string{"script", "run", "no-slash"})
	if err := root.Execute(); ExitCode(err) != ExitUsage {
		t.Errorf("err %v, want exit 2", err)
	}
}

func TestScriptShow_NeverPrintsASensitiveDefault(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Env = map[string]string{"UNIKUBE_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	}))
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutScript(ctx, "shop", "seed", client.ScriptSpec{Interpreter: "sh", Body: "echo hi",
		Variables: []client.Variable{{Name: "PASSWORD", Sensitive: true, Default: "pl41n-s3cret"}, {Name: "MODE", Default: "fast"}}}); err != nil {
		t.Fatal(err)
	}
	w := &world{srv: srv, admin: admin, env: map[string]string{
		client.EnvEndpoint: srv.URL, client.EnvToken: srv.AdminToken, "UNIKUBE_CONFIG": filepath.Join(t.TempDir(), "login.json"),
	}}
	for _, args := range [][]string{{"script", "show", "shop/seed"}, {"script", "show", "shop/seed", "-o", "json"}, {"script", "show", "shop/seed", "-o", "yaml"}} {
		out, errOut, code := w.run(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if strings.Contains(out+errOut, "pl41n-s3cret") {
			t.Fatalf("%v printed the sensitive default:\n%s", args, out)
		}
		if !strings.Contains(out, "fast") || !strings.Contains(out, "default set") && !strings.Contains(out, "default_set") {
			t.Fatalf("%v does not say the default is set:\n%s", args, out)
		}
	}
}
