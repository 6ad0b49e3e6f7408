// Package helmplugin gives tests the `helm state` plugin as users get it:
// a release archive in the layout the release builds
// (helm-state_<version>_<os>_<arch>.tar.gz with plugin.yaml, the hook
// scripts and the helm-state binary at its root and no directories,
// listed in the release's SHA256SUMS), the real
// Helm 3 and Helm 4 CLIs that `make tools` installs, and an isolated Helm
// environment whose PATH holds no Go toolchain.
package helmplugin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Module is the Go module (and GitHub repository) path.
const Module = "github.com/unikubehq/terraform-provider-unikube"

// Helm is one helm CLI.
type Helm struct {
	Name  string // "helm3" or "helm4", for subtest names
	Bin   string
	Major int
}

// Binaries returns the Helm 3 and Helm 4 CLIs `make tools` installs
// ($UNIKUBE_TOOLS_DIR/bin/helm and $UNIKUBE_TOOLS_DIR/helm4/bin/helm);
// E2E_HELM_BIN / E2E_HELM4_BIN override them.
func Binaries(t testing.TB) []Helm {
	t.Helper()
	tools := testenv.ToolsDir()
	h3 := firstSet(os.Getenv("E2E_HELM_BIN"), filepath.Join(tools, "bin", "helm"))
	h4 := firstSet(os.Getenv("E2E_HELM4_BIN"), filepath.Join(tools, "helm4", "bin", "helm"))
	var out []Helm
	for _, h := range []Helm{{Name: "helm3", Bin: h3, Major: 3}, {Name: "helm4", Bin: h4, Major: 4}} {
		if _, err := os.Stat(h.Bin); err != nil {
			testenv.Missing(t, "%s CLI not found at %s: run make tools (scripts/install-deps.sh installs it)", h.Name, h.Bin)
			continue
		}
		out = append(out, h)
	}
	return out
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// RepoRoot is the repository root (the directory with go.mod and plugin.yaml).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("helmplugin: no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var versionLine = regexp.MustCompile(`(?m)^version:\s*"?([^"\s]+)"?\s*$`)

// PluginVersion is the version in the repository's plugin.yaml (what a
// VCS install downloads).
func PluginVersion(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := versionLine.FindSubmatch(b)
	if m == nil {
		t.Fatal("plugin.yaml has no version line")
	}
	return string(m[1])
}

// PluginFiles are the repository files a plugin archive holds besides the
// helm-state binary, all at its root (the release's archive must hold the
// same, and no directory: Helm 3 cannot extract a file in a directory the
// archive does not list).
var PluginFiles = []string{"plugin.yaml", "install-binary.sh", "plugin.complete"}

// ArchiveName and SumsName are the release's file names for version
// (without the leading v) on this machine's OS and arch.
func ArchiveName(version string) string {
	return fmt.Sprintf("helm-state_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
}

// SumsName is the release's checksum file, which lists every archive.
func SumsName(version string) string {
	return fmt.Sprintf("terraform-provider-unikube_%s_SHA256SUMS", version)
}

// BuildRelease builds helm-state at the repository's plugin version
// and writes the release files into dir: the plugin archive for this OS
// and arch and the SHA256SUMS listing it. It returns the archive's path.
func BuildRelease(ctx context.Context, t testing.TB, dir string) string {
	t.Helper()
	return buildRelease(ctx, t, dir, "v"+PluginVersion(t))
}

// BuildDevRelease is BuildRelease with a binary that reports the version
// dev: the release's layout and install path, with a client that works with
// the test cluster's agent, a development build too (the agent handshake
// accepts only an equal version).
func BuildDevRelease(ctx context.Context, t testing.TB, dir string) string {
	t.Helper()
	return buildRelease(ctx, t, dir, "dev")
}

func buildRelease(ctx context.Context, t testing.TB, dir, reports string) string {
	t.Helper()
	root := RepoRoot(t)
	version := PluginVersion(t)
	bin := filepath.Join(t.TempDir(), "helm-state")
	ld := "-s -w -X " + Module + "/internal/buildinfo.version=" + reports
	// No -trimpath: the build reuses the cache of the other tests' builds.
	build := exec.CommandContext(ctx, "go", "build", "-ldflags", ld, "-o", bin, "./helmplugin/cmd/helm-state")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build helm-state: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range PluginFiles {
		add(f, filepath.Join(root, f))
	}
	add("helm-state", bin)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, ArchiveName(version))
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	sums := fmt.Sprintf("%s  %s\n", hex.EncodeToString(sum[:]), filepath.Base(archive))
	if err := os.WriteFile(filepath.Join(dir, SumsName(version)), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	return archive
}

// Toolbox is a directory of links to the commands Helm and the install
// hook use (sh, git, curl, tar, sha256sum, ...), and nothing else: a PATH
// of only this directory is a machine without Go.
func Toolbox(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"sh", "git", "curl", "wget", "tar", "gzip", "sha256sum", "shasum", "awk", "cut", "uname", "tr",
		"mktemp", "mkdir", "chmod", "mv", "rm", "cp", "sed", "head", "cat", "dirname", "ls", "ln", "env", "basename"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Env is an isolated Helm environment under home: its own config, cache
// and data directories, PATH as given. HELM_PLUGINS stays at its default
// under the data directory: Helm 4 installs archives and local directories
// there whatever HELM_PLUGINS says.
func Env(home, path string) []string {
	return []string{
		"HOME=" + home, "PATH=" + path, "HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"), "HELM_DATA_HOME=" + filepath.Join(home, "data"),
	}
}

// SourceRepo makes a git repository of the working tree's files (tracked
// and new, not ignored), committed and tagged v<plugin version>, and
// returns its path: what `helm plugin install file://<path>` clones (Helm's
// VCS installer recognises a file:// URL by the .git directory in it).
func SourceRepo(ctx context.Context, t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	ls := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	work := filepath.Join(t.TempDir(), "work")
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(work, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, st.Mode().Perm()|fs.FileMode(0o200)); err != nil {
			t.Fatal(err)
		}
	}
	git := func(dir string, args ...string) {
		t.Helper()
		c := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"}, args...)...)
		c.Dir = dir
		c.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git(work, "init", "-q")
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "release")
	git(work, "tag", "v"+PluginVersion(t))
	return work
}
