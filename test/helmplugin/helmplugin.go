// Package helmplugin gives tests the `helm state` plugin as users get it:
// the release archive GoReleaser builds from .goreleaser.yaml
// (helm-state_<version>_<os>_<arch>.tar.gz with plugin.yaml, the hook
// scripts and the helm-state binary at its root and no directories,
// listed in the release's SHA256SUMS), the real
// Helm 3 and Helm 4 CLIs that `make tools` installs, and an isolated Helm
// environment whose PATH holds no Go toolchain.
package helmplugin

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/snapshot"
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

// BuildRelease writes the release files of the repository's plugin
// version into dir: the plugin archive for this OS and arch and the
// SHA256SUMS listing it, as GoReleaser makes them from .goreleaser.yaml
// (a snapshot narrowed to the helm-state build for this machine, with
// plugin.yaml's version as its version: the files a release of that
// version holds, unsigned). It returns the archive's path.
func BuildRelease(ctx context.Context, t testing.TB, dir string) string {
	t.Helper()
	return copyRelease(t, snapshotDist(ctx, t, ""), dir)
}

// BuildDevRelease is BuildRelease with a binary that reports the version
// dev: the release's archive and install path, with a client that works
// with the test cluster's agent, a development build too (the agent
// handshake accepts only an equal version).
func BuildDevRelease(ctx context.Context, t testing.TB, dir string) string {
	t.Helper()
	return copyRelease(t, snapshotDist(ctx, t, "dev"), dir)
}

// copyRelease copies the archive and SHA256SUMS of the snapshot in dist
// into dir, where a test may serve them or tamper with its copies.
func copyRelease(t testing.TB, dist, dir string) string {
	t.Helper()
	version := PluginVersion(t)
	for _, f := range []string{ArchiveName(version), SumsName(version)} {
		b, err := os.ReadFile(filepath.Join(dist, f))
		if err != nil {
			t.Fatalf("the snapshot in %s lacks %s: %v", dist, f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, ArchiveName(version))
}

// The snapshots this test binary built, by the version their binary
// reports ("" for the release's own): GoReleaser runs once per binary, not
// once per test.
var (
	snapshotsMu sync.Mutex
	snapshots   = map[string]string{}
)

// snapshotsDir holds this process's snapshots; CleanupReleases removes it
// (test/helmplugin's TestMain calls it), and the next test binary that
// builds one removes those of processes that are gone.
func snapshotsDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("helm-state-release-%d", os.Getpid()))
}

// CleanupReleases removes the snapshots this process built (TestMain
// calls it after the tests).
func CleanupReleases() {
	_ = os.RemoveAll(snapshotsDir())
}

func removeStaleSnapshots() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "helm-state-release-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "helm-state-release-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

// snapshotDist builds (once) the GoReleaser snapshot of the helm-state
// archive for this machine, its binary reporting reports (the release's
// v<version> when empty), and returns its dist directory.
func snapshotDist(ctx context.Context, t testing.TB, reports string) string {
	t.Helper()
	snapshotsMu.Lock()
	defer snapshotsMu.Unlock()
	if dist, ok := snapshots[reports]; ok {
		return dist
	}
	goreleaser := filepath.Join(testenv.ToolsDir(), "bin", "goreleaser")
	if _, err := os.Stat(goreleaser); err != nil {
		p, err := exec.LookPath("goreleaser")
		if err != nil {
			testenv.Missing(t, "goreleaser not found in %s or on PATH: run make tools (it builds the plugin's release archive)", filepath.Dir(goreleaser))
		}
		goreleaser = p
	}
	removeStaleSnapshots()
	name := reports
	if name == "" {
		name = "release"
	}
	dist := filepath.Join(snapshotsDir(), name)
	env := os.Environ()
	if reports != "" {
		env = append(env, "UNIKUBE_BUILDINFO_VERSION="+reports)
	}
	start := time.Now()
	// The snapshot is shared by every test of the binary that needs it:
	// its build must not die with the deadline of the test that happened
	// to ask first (on a loaded machine it takes minutes), nor spend that
	// test's whole budget.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	res, err := snapshot.Build(ctx, snapshot.Options{
		Root: RepoRoot(t), Dist: dist, IDs: []string{"helm-state"}, HostOnly: true,
		Version: PluginVersion(t), Goreleaser: goreleaser, Env: env,
	})
	if err != nil {
		t.Fatalf("build the plugin's release archive: %v", err)
	}
	t.Logf("goreleaser snapshot %s (binary reports %q) built in %s", res.Version, reports, time.Since(start).Round(100*time.Millisecond))
	// Only the release files stay: a test binary without TestMain leaves
	// them until the next one removes them.
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != ArchiveName(res.Version) && n != SumsName(res.Version) {
			if err := os.RemoveAll(filepath.Join(dist, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	snapshots[reports] = dist
	return dist
}

// Toolbox is a directory of links to the commands Helm and the install
// hook use (sh, git, curl, tar, sha256sum, ...), and nothing else: a PATH
// of only this directory is a machine without Go.
func Toolbox(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"sh", "git", "curl", "wget", "tar", "gzip", "sha256sum", "shasum", "awk", "cut", "uname", "tr",
		"mktemp", "mkdir", "chmod", "mv", "rm", "cp", "sed", "head", "cat", "dirname", "ls", "ln", "env", "basename", "grep", "gpg", "gpgconf"} {
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

// GitURL publishes SourceRepo as a bare repository on a loopback HTTP
// server (git's dumb HTTP protocol: plain files after `git
// update-server-info`) and returns its URL, .../terraform-provider-unikube.git:
// the git URL `helm plugin install` clones, as it clones GitHub's. (Helm's
// VCS installer takes a file:// URL only of a repository with a .git
// directory, not of a bare one.)
func GitURL(ctx context.Context, t testing.TB) string {
	t.Helper()
	work := SourceRepo(ctx, t)
	dir := t.TempDir()
	bare := filepath.Join(dir, "terraform-provider-unikube.git")
	for _, args := range [][]string{{"clone", "-q", "--bare", work, bare}, {"-C", bare, "update-server-info"}} {
		c := exec.CommandContext(ctx, "git", args...)
		c.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(bare)
}

// SourceRepo makes a git repository of the working tree's files (tracked
// and new, not ignored), committed and tagged v<plugin version>, and
// returns its path.
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
