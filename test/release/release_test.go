// Package release_test checks the release as users get it: GoReleaser
// builds the archives from .goreleaser.yaml (a snapshot, for this machine's
// platform), and the real terraform CLI, with no Go on its PATH, installs
// the provider from the release zip through a filesystem mirror and applies
// an example against a real platform server.
package release_test

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/release/snapshot"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestReleaseArchives_InstallTheProviderFromAFilesystemMirrorWithoutGo(t *testing.T) {
	terraform := lookTool(t, "terraform")
	goreleaser := lookTool(t, "goreleaser")
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	start := time.Now()
	snap, err := snapshot.Build(ctx, snapshot.Options{
		Root: root, Dist: filepath.Join(t.TempDir(), "dist"), HostOnly: true, Goreleaser: goreleaser,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("goreleaser snapshot %s for %s/%s in %s", snap.Version, runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Second))

	t.Run("checksums and the registry manifest", func(t *testing.T) {
		sums := readSums(t, snap.SHA256SUMS())
		archives, _ := filepath.Glob(filepath.Join(snap.Dist, "*_"+snap.Version+"_*"))
		for _, a := range archives {
			name := filepath.Base(a)
			if !strings.HasSuffix(name, ".zip") && !strings.HasSuffix(name, ".tar.gz") {
				continue
			}
			if got := sha256File(t, a); sums[name] != got {
				t.Errorf("SHA256SUMS says %s is %q, the file's sha256 is %s", name, sums[name], got)
			}
		}
		manifest := filepath.Base(snap.Manifest())
		if want := sha256File(t, filepath.Join(root, "terraform-registry-manifest.json")); sums[manifest] != want {
			t.Errorf("SHA256SUMS lists %s as %q, want the sha256 of terraform-registry-manifest.json %s", manifest, sums[manifest], want)
		}
		var m struct {
			Version  int `json:"version"`
			Metadata struct {
				ProtocolVersions []string `json:"protocol_versions"`
			} `json:"metadata"`
		}
		b, err := os.ReadFile(snap.Manifest())
		if err != nil {
			t.Fatalf("the registry manifest is not in dist under its release name: %v", err)
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Version != 1 || !slices.Equal(m.Metadata.ProtocolVersions, []string{"6.0"}) {
			t.Errorf("registry manifest %s: %s (%v), want version 1 with protocol_versions [6.0]", manifest, b, err)
		}
	})

	t.Run("archive contents", func(t *testing.T) {
		plat := runtime.GOOS + "_" + runtime.GOARCH
		checkEntries(t, snap.ProviderZip(runtime.GOOS, runtime.GOARCH), map[string]bool{
			"terraform-provider-unikube_v" + snap.Version: true, "LICENSE": false, "CHANGELOG.md": false,
		})
		checkEntries(t, filepath.Join(snap.Dist, "helm-state_"+snap.Version+"_"+plat+".tar.gz"), map[string]bool{
			"helm-state": true, "plugin.yaml": false, "install-binary.sh": true, "plugin.complete": true, "LICENSE": false,
		})
		checkEntries(t, filepath.Join(snap.Dist, "unikube-platform_"+snap.Version+"_"+plat+".tar.gz"), map[string]bool{
			"unikube-platform": true, "LICENSE": false,
		})
		if runtime.GOOS == "linux" {
			checkEntries(t, filepath.Join(snap.Dist, "unikube-agent_"+snap.Version+"_"+plat+".tar.gz"), map[string]bool{
				"unikube-agent": true, "LICENSE": false,
			})
		}
	})

	// A real platform with the project the example's script lives in, and
	// a secret key so its write-only default can be sealed.
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Env = map[string]string{"UNIKUBE_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	}))
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", "release test"); err != nil {
		t.Fatal(err)
	}

	// The user's side: the zip in a mirror, a CLI configuration naming it
	// (no dev_overrides), the example with the provider required at the
	// snapshot's (pre-release) version.
	home := t.TempDir()
	mirror := filepath.Join(home, "mirror")
	zipPath, err := snap.Mirror(mirror, runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(home, "terraform.rc")
	writeFile(t, rc, snapshot.CLIConfig(mirror))
	work := filepath.Join(home, "work")
	copyFile(t, filepath.Join(root, "examples", "resources", "unikube_script", "resource.tf"), filepath.Join(work, "resource.tf"))
	writeFile(t, filepath.Join(work, "versions.tf"), snapshot.RequiredProvider(snap.Version))

	// terraform alone on PATH: no Go toolchain (nor anything else) to fall
	// back on.
	bin := filepath.Join(home, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(terraform, filepath.Join(bin, "terraform")); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + bin, "HOME=" + home, "TF_CLI_CONFIG_FILE=" + rc,
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1",
		"UNIKUBE_ENDPOINT=" + srv.URL, "UNIKUBE_TOKEN=" + srv.AdminToken,
		"TF_VAR_smtp_password=release-test-smtp-secret",
	}
	tf := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, terraform, args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		t.Logf("$ terraform %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	out, err := tf("init", "-no-color")
	if err != nil {
		t.Fatalf("terraform init: %v", err)
	}
	if want := "Installing unikubehq/unikube v" + snap.Version; !strings.Contains(out, want) {
		t.Errorf("terraform init did not say %q", want)
	}
	if _, err := tf("plan", "-no-color", "-out=tfplan"); err != nil {
		t.Fatalf("terraform plan: %v", err)
	}
	if _, err := tf("apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("terraform apply: %v", err)
	}
	script, err := admin.GetScript(ctx, "shop", "anonymize-customers")
	if err != nil {
		t.Fatalf("the applied script is not on the platform: %v", err)
	}
	if !slices.ContainsFunc(script.Variables, func(v client.Variable) bool { return v.Name == "SMTP_PASSWORD" && v.Sensitive && v.DefaultSet }) {
		t.Errorf("script variables %+v: want SMTP_PASSWORD sensitive with its write-only default set", script.Variables)
	}
	// A second plan of the same configuration changes nothing.
	if out, err := tf("plan", "-no-color", "-detailed-exitcode"); err != nil {
		t.Errorf("a second plan is not empty (%v):\n%s", err, out)
	}

	// From a mirror Terraform records the h1 hash of the zip's contents;
	// the zh: hash (the zip's sha256) it records only from the registry,
	// which takes it from SHA256SUMS, checked above against the zip.
	t.Run("lock file holds the zip's h1 hash", func(t *testing.T) {
		hashes := lockedHashes(t, filepath.Join(work, ".terraform.lock.hcl"), snap.Version)
		h1, err := dirhash.HashZip(zipPath, dirhash.Hash1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hashes, []string{h1}) {
			t.Errorf("lock file hashes %v, want [%s] (the h1 hash of the release zip's contents)", hashes, h1)
		}
	})
}

// lookTool finds a tool on PATH or in the tools directory make tools fills.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(testenv.ToolsDir(), "bin", name)
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p
	}
	testenv.Missing(t, "%s is not installed: run make tools", name)
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, snapshot.ConfigFile)); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no %s above the test's directory", snapshot.ConfigFile)
		}
		dir = parent
	}
}

// readSums parses a SHA256SUMS file: "<hex>  <name>" per line.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("checksum file: %v", err)
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hash, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("%s: line %q is not '<sha256>  <name>'", path, sc.Text())
		}
		sums[name] = hash
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkEntries checks that archive holds exactly the named files, those
// marked true executable.
func checkEntries(t *testing.T, archive string, want map[string]bool) {
	t.Helper()
	got := map[string]os.FileMode{}
	if strings.HasSuffix(archive, ".zip") {
		zr, err := zip.OpenReader(archive)
		if err != nil {
			t.Fatalf("release archive: %v", err)
		}
		defer func() { _ = zr.Close() }()
		for _, f := range zr.File {
			if !f.FileInfo().IsDir() {
				got[f.Name] = f.Mode()
			}
		}
	} else {
		f, err := os.Open(archive)
		if err != nil {
			t.Fatalf("release archive: %v", err)
		}
		defer func() { _ = f.Close() }()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", archive, err)
			}
			if h.Typeflag == tar.TypeReg {
				got[h.Name] = h.FileInfo().Mode()
			}
		}
	}
	for name, exe := range want {
		mode, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s lacks %s (it holds %v)", filepath.Base(archive), name, got)
		case exe && mode&0o111 == 0:
			t.Errorf("%s: %s is not executable (%v)", filepath.Base(archive), name, mode)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s holds %s, which the release does not ship", filepath.Base(archive), name)
		}
	}
}

var lockHash = regexp.MustCompile(`"((?:h1|zh):[^"]+)"`)

// lockedHashes returns the hashes .terraform.lock.hcl records for the
// provider at version.
func lockedHashes(t *testing.T, path, version string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("terraform init wrote no lock file: %v", err)
	}
	lock := string(b)
	_, block, ok := strings.Cut(lock, `provider "`+snapshot.ProviderSource+`" {`)
	if !ok {
		t.Fatalf("lock file has no block for %s:\n%s", snapshot.ProviderSource, lock)
	}
	block, _, _ = strings.Cut(block, "\n}")
	if !strings.Contains(block, `version     = "`+version+`"`) {
		t.Errorf("lock file does not lock version %s:\n%s", version, block)
	}
	var hashes []string
	for _, m := range lockHash.FindAllStringSubmatch(block, -1) {
		hashes = append(hashes, m[1])
	}
	return hashes
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}
