package quickstart

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The env file and the token files are 0600 and the quickstart's
// directory 0700, whatever the umask and whatever an earlier run left.
func TestQuickstartFiles_AreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), ".quickstart")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"env", "dev-token"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("left by an earlier run\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	r := newRun(Config{Root: t.TempDir(), Dir: dir, Namespace: "shop"})
	r.st.Endpoint, r.st.Kubeconfig = "http://127.0.0.1:8080", "/var/lib/unikube-cluster/kubeconfig"
	if err := r.writeEnvFile("http://10.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	if err := writePrivate(filepath.Join(dir, "admin-token"), []byte("uks_x\n")); err != nil {
		t.Fatal(err)
	}
	// devToken keeps an existing token file, narrowing its mode.
	if err := r.devToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{".": 0o700, "env": 0o600, "admin-token": 0o600, "dev-token": 0o600}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "env")); !strings.Contains(string(b), "export KUBECONFIG=") {
		t.Errorf("env file not rewritten: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want)-1 {
		t.Errorf("%d files in %s, want %d (a temporary file left?)", len(entries), dir, len(want)-1)
	}
}
