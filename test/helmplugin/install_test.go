package helmplugin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// user is one person's machine: a helm CLI, a home of their own, a PATH.
type user struct {
	helm Helm
	home string
	env  []string
}

func newUser(t *testing.T, h Helm, path string, extra ...string) *user {
	home := t.TempDir()
	return &user{helm: h, home: home, env: append(Env(home, path), extra...)}
}

func (u *user) run(ctx context.Context, t *testing.T, args ...string) (string, int) {
	t.Helper()
	c := exec.CommandContext(ctx, u.helm.Bin, args...)
	c.Env = u.env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), code
}

func (u *user) ok(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, code := u.run(ctx, t, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", u.helm.Name, strings.Join(args, " "), code, out)
	}
	return out
}

// install is `helm plugin install SOURCE`. Helm 4 verifies a signature
// for every source but a local directory unless told not to, and the
// release ships no .prov (manual/helm-plugin.md says so).
func (u *user) install(ctx context.Context, t *testing.T, source string) (string, int) {
	t.Helper()
	args := []string{"plugin", "install", source}
	if st, err := os.Stat(source); u.helm.Major >= 4 && (err != nil || !st.IsDir()) {
		args = append(args, "--verify=false")
	}
	return u.run(ctx, t, args...)
}

// release serves the release files of dir on loopback, as GitHub serves a
// release's downloads.
func release(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPluginInstall_FromReleaseArchiveAndGitWithoutGo installs the plugin
// with the real helm CLIs (Helm 3 and Helm 4) on a PATH without Go: from
// GoReleaser's release archive by URL and extracted into a directory (Helm
// 3 takes no archive file, Helm 4 only one wrapped in a directory named
// after the file, which Helm 3's URL install refuses), and from the git URL
// of a bare clone served on loopback (whose install hook downloads the
// archive of its version from the loopback release and checks it against
// SHA256SUMS). Each install then runs helm state through helm.
func TestPluginInstall_FromReleaseArchiveAndGitWithoutGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	helms := Binaries(t)
	dist := t.TempDir()
	archive := BuildRelease(ctx, t, dist)
	base := release(t, dist)
	gitURL := GitURL(ctx, t)
	version := PluginVersion(t)
	path := Toolbox(t)
	if _, err := exec.LookPath(filepath.Join(path, "go")); err == nil {
		t.Fatal("the toolbox PATH has go")
	}
	// What a user does with a downloaded archive: extract it into a directory.
	extracted := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(extracted, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "tar", "-xzf", archive, "-C", extracted).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}

	for _, h := range helms {
		t.Run(h.Name, func(t *testing.T) {
			for _, c := range []struct {
				name, source, want string
			}{
				{"extracted archive", extracted, "using the bundled"},
				{"archive URL", base + "/" + filepath.Base(archive), "using the bundled"},
				{"git repository", gitURL, "(sha256 verified)"},
			} {
				t.Run(c.name, func(t *testing.T) {
					u := newUser(t, h, path, "HELM_STATE_RELEASE_URL="+base)
					start := time.Now()
					out, code := u.install(ctx, t, c.source)
					if code != 0 || !strings.Contains(out, c.want) {
						t.Fatalf("helm plugin install %s: exit %d, want %q in:\n%s", c.source, code, c.want, out)
					}
					t.Logf("%s plugin install from %s: %s", h.Name, c.name, time.Since(start).Round(10*time.Millisecond))
					if got := u.ok(ctx, t, "state", "version"); !strings.Contains(got, version) {
						t.Errorf("helm state version = %q, want %s", got, version)
					}
					if got := u.ok(ctx, t, "plugin", "list"); !strings.Contains(got, "state") || !strings.Contains(got, version) {
						t.Errorf("helm plugin list:\n%s", got)
					}
					// Completion goes through plugin.complete of the installed plugin.
					if got := u.ok(ctx, t, "__complete", "state", "ap"); !strings.Contains(got, "apply") {
						t.Errorf("helm __complete state ap:\n%s", got)
					}
				})
			}
		})
	}
}

// TestPluginInstall_GitInstallRefusesABadArchiveAndBuildsOnlyWithGo checks
// the hook's failure paths with the real helm: an archive whose checksum
// does not match is never installed (not even by building instead); with no
// release to download and no Go, the install fails saying what to do; with
// Go on PATH, it builds from the clone and says so.
func TestPluginInstall_GitInstallRefusesABadArchiveAndBuildsOnlyWithGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	helms := Binaries(t)
	if len(helms) == 0 {
		return
	}
	h := helms[0]
	dist := t.TempDir()
	BuildRelease(ctx, t, dist)
	version := PluginVersion(t)
	gitURL := GitURL(ctx, t)
	path := Toolbox(t)

	// A release whose SHA256SUMS does not match the archive.
	bad := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dist, ArchiveName(version)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, ArchiveName(version)), append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	sums, _ := os.ReadFile(filepath.Join(dist, SumsName(version)))
	if err := os.WriteFile(filepath.Join(bad, SumsName(version)), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	goDir := filepath.Dir(mustLookPath(t, "go"))
	u := newUser(t, h, path+string(os.PathListSeparator)+goDir, "HELM_STATE_RELEASE_URL="+release(t, bad), "GOFLAGS=", "GOCACHE="+goEnv(t, "GOCACHE"), "GOMODCACHE="+goEnv(t, "GOMODCACHE"), "GOPROXY=off")
	out, code := u.install(ctx, t, gitURL)
	if code == 0 || !strings.Contains(out, "checksum mismatch") || strings.Contains(out, "building from source") {
		t.Fatalf("install with a tampered archive: exit %d, want a checksum mismatch and no build:\n%s", code, out)
	}

	// No release at that URL, no Go: a clear error.
	empty := release(t, t.TempDir())
	u = newUser(t, h, path, "HELM_STATE_RELEASE_URL="+empty)
	out, code = u.install(ctx, t, gitURL)
	if code == 0 || !strings.Contains(out, "go is not on PATH") || !strings.Contains(out, "HELM_STATE_BINARY") {
		t.Fatalf("install without a release and without Go: exit %d\n%s", code, out)
	}

	// No release, Go present: built from the clone, and said so.
	u = newUser(t, h, path+string(os.PathListSeparator)+goDir, "HELM_STATE_RELEASE_URL="+empty, "GOFLAGS=", "GOCACHE="+goEnv(t, "GOCACHE"), "GOMODCACHE="+goEnv(t, "GOMODCACHE"), "GOPROXY=off")
	out, code = u.install(ctx, t, gitURL)
	if code != 0 || !strings.Contains(out, "building from source with Go instead") {
		t.Fatalf("install without a release, with Go: exit %d\n%s", code, out)
	}
	if got := u.ok(ctx, t, "state", "version"); !strings.Contains(got, version) {
		t.Errorf("helm state version = %q, want %s", got, version)
	}
}

func mustLookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestPluginCompletion_ReleasesAndStateReferencesThroughHelm asks the real
// helm (Helm 3 and 4) to complete `helm state ...` the way a shell does
// (helm __complete): subcommands, flags, and state references from a real
// platform.
func TestPluginCompletion_ReleasesAndStateReferencesThroughHelm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	helms := Binaries(t)
	dist := t.TempDir()
	archiveURL := release(t, dist) + "/" + filepath.Base(BuildRelease(ctx, t, dist))
	srv := platformtest.Start(t)
	seedState(ctx, t, srv.Admin(t))

	for _, h := range helms {
		t.Run(h.Name, func(t *testing.T) {
			u := newUser(t, h, Toolbox(t), client.EnvEndpoint+"="+srv.URL, client.EnvToken+"="+srv.AdminToken)
			if out, code := u.install(ctx, t, archiveURL); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			for _, c := range []struct {
				args []string
				want []string
			}{
				{[]string{"state", ""}, []string{"apply", "capture", "install", "rollback", "history"}},
				{[]string{"state", "apply", "--agent-"}, []string{"--agent-resources", "--agent-image"}},
				{[]string{"state", "show", "-o", ""}, []string{"json", "yaml", "table"}},
				{[]string{"state", "show", "sh"}, []string{"shop/"}},
				{[]string{"state", "apply", "shop/"}, []string{"shop/seed"}},
				{[]string{"state", "show", "shop/seed:"}, []string{"shop/seed:v1", "shop/seed:@latest"}},
				{[]string{"state", "capture", "web", "--to", "shop/s"}, []string{"shop/seed"}},
			} {
				out := u.ok(ctx, t, append([]string{"__complete"}, c.args...)...)
				for _, w := range c.want {
					if !hasLine(out, w) {
						t.Errorf("helm __complete %s lacks %q:\n%s", strings.Join(c.args, " "), w, out)
					}
				}
			}
		})
	}
}

func hasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == want || strings.HasPrefix(l, want+"\t") {
			return true
		}
	}
	return false
}

// seedState commits shop/seed:v1: a PostgreSQL component (an SQL script)
// and an uploads volume.
func seedState(ctx context.Context, t *testing.T, admin *client.Client) {
	t.Helper()
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := admin.Chunks("shop", "seed")
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: "uploads", URL: "file://" + dir}}, store, capture.Spec{State: "shop/seed"})
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "sql"},
		strings.NewReader("CREATE TABLE items (id int);"), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Components = append(m.Components, db)
	if _, err := admin.CommitVersion(ctx, "shop", "seed", "v1", m); err != nil {
		t.Fatal(err)
	}
}

// TestPluginInstallState_Helm4RunsThePostRendererPlugin runs `helm state
// install --state` through the real Helm 4 (a client-side dry run, so no
// cluster; Helm 3 checks the cluster even then, and the e2e tests run both
// on the real cluster): Helm 4 gets the post-renderer plugin helm state
// writes for it, the rendered release carries the seed Jobs of the state's
// components, and a failing post-renderer's error reaches the user although
// Helm 4 drops a plugin's stderr.
func TestPluginInstallState_Helm4RunsThePostRendererPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var h4 *Helm
	for _, h := range Binaries(t) {
		if h.Major == 4 {
			h4 = &h
		}
	}
	if h4 == nil {
		return
	}
	dist := t.TempDir()
	archiveURL := release(t, dist) + "/" + filepath.Base(BuildRelease(ctx, t, dist))
	srv := platformtest.Start(t)
	seedState(ctx, t, srv.Admin(t))
	chart := filepath.Join(RepoRoot(t), "examples", "quickstart", "chart")
	tmp := t.TempDir()
	u := newUser(t, *h4, Toolbox(t), client.EnvEndpoint+"="+srv.URL, client.EnvToken+"="+srv.AdminToken,
		"HELM_NAMESPACE=dev", "KUBECONFIG="+filepath.Join(tmp, "none"), "TMPDIR="+tmp)
	if out, code := u.install(ctx, t, archiveURL); code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	out := u.ok(ctx, t, "state", "install", "shop", chart, "--state", "shop/seed:v1", "--dry-run=client")
	for _, want := range []string{"kind: Job", "name: shop-seed-db-", "name: shop-seed-uploads-", "--component", "unikube.dev/hook: \"true\""} {
		if !strings.Contains(out, want) {
			t.Errorf("helm state install --dry-run output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	out, code := u.run(ctx, t, "state", "install", "shop", chart, "--state", "shop/nope:v1", "--dry-run=client")
	if code != 1 || !strings.Contains(out, "the post-renderer failed") || !strings.Contains(out, "not found") {
		t.Errorf("install with a missing state: exit %d, want 1 and the post-renderer's error:\n%s", code, out)
	}
	// The post-renderer plugin is removed after each run.
	if m, _ := filepath.Glob(filepath.Join(tmp, "helm-state-postrenderer-*")); len(m) > 0 {
		t.Errorf("post-renderer plugin directories left behind: %v", m)
	}
}
