package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The harness's kubeconfigs hold cluster credentials: they are written
// 0600 whatever the umask, also over a world-readable file an earlier run
// left, and a running cluster's kubeconfig is narrowed when reused.
func TestWriteConfigs_KubeconfigsAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	c := DefaultConfig()
	c.StateDir = t.TempDir()
	if err := os.WriteFile(c.KubeconfigPath(), []byte("left by an earlier run"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := c.registry(registryComponent)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.writeConfigs(reg); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(c.StateDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if p == c.state("bin", "runc") {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("%s: temporary file left behind", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(c.KubeconfigPath()); !strings.Contains(string(b), "client-key:") {
		t.Errorf("kubeconfig not rewritten: %q", b)
	}

	// A cluster started by an earlier version of the harness.
	if err := os.Chmod(c.KubeconfigPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.ownerOnlyKubeconfig(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("reused cluster's kubeconfig: mode %v, want 0600", fi.Mode().Perm())
	}
}
