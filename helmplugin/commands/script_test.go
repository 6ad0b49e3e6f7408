package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
