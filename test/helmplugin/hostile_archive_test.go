package helmplugin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInstallHook_RefusesAnArchiveWhoseBinaryIsALink runs the plugin's
// install hook (install-binary.sh, as helm runs it for a git install) on
// a PATH without Go against a release whose archive lists helm-state as a
// symbolic link to a file of the user's, with a matching SHA256SUMS (a
// hostile mirror controls both). The hook must not follow the link: the
// user's file keeps its mode and no helm-state is installed.
func TestInstallHook_RefusesAnArchiveWhoseBinaryIsALink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const version = "9.9.9"
	victim := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "helm-state", Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	rel := t.TempDir()
	if err := os.WriteFile(filepath.Join(rel, ArchiveName(version)), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(gz.Bytes())
	if err := os.WriteFile(filepath.Join(rel, SumsName(version)), []byte(hex.EncodeToString(sum[:])+"  "+ArchiveName(version)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A checkout of the plugin: go.mod beside plugin.yaml and the hook.
	plugin := t.TempDir()
	hook, err := os.ReadFile(filepath.Join(RepoRoot(t), "install-binary.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": "module example.invalid/plugin\n", "plugin.yaml": "name: state\nversion: \"" + version + "\"\n", "install-binary.sh": string(hook)} {
		if err := os.WriteFile(filepath.Join(plugin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(plugin, "install-binary.sh"))
	cmd.Env = []string{"PATH=" + Toolbox(t), "HOME=" + t.TempDir(), "HELM_PLUGIN_DIR=" + plugin, "HELM_STATE_RELEASE_URL=" + release(t, rel)}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the hook installed an archive whose helm-state is a link:\n%s", out)
	}
	if !strings.Contains(string(out), "not a regular file") {
		t.Errorf("output does not say what is wrong with the archive:\n%s", out)
	}
	if st, err := os.Stat(victim); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the link's target: %v, %v; want it untouched (0600)", st.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(plugin, "helm-state")); !os.IsNotExist(err) {
		t.Errorf("helm-state was installed (%v)", err)
	}
}
