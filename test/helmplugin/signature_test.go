package helmplugin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/snapshot"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// gpgKey is a throwaway signing key in a keyring of its own.
type gpgKey struct {
	home string // GNUPGHOME holding the secret key
	fpr  string
	pub  string // the public key, armored, in a file
}

// newGPGKey makes an unprotected ed25519 signing key. Its keyring lives in
// a short path of its own: gpg-agent's socket path must stay under the
// kernel's limit, which t.TempDir's long names can pass.
func newGPGKey(ctx context.Context, t *testing.T, name string) gpgKey {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	gpg := func(args ...string) string {
		t.Helper()
		c := exec.CommandContext(ctx, "gpg", append([]string{"--batch", "--homedir", home}, args...)...)
		out, err := c.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <"+name+"@example.invalid>", "ed25519", "sign", "never")
	k := gpgKey{home: home, pub: filepath.Join(home, "public.asc")}
	for _, l := range strings.Split(gpg("--with-colons", "--list-keys"), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			k.fpr = f[9]
			break
		}
	}
	if k.fpr == "" {
		t.Fatal("gpg listed no fingerprint for the new key")
	}
	if err := os.WriteFile(k.pub, []byte(gpg("--armor", "--export", k.fpr)), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPluginInstall_GitInstallVerifiesTheSignedChecksums signs a release as
// `make release` does (GoReleaser's signing step of .goreleaser.yaml, with
// a throwaway key in place of the release key) and installs the plugin
// from the git repository with the real helm on a PATH without Go, the
// hook given the public key in HELM_STATE_GPG_KEY: the signed release
// installs and says whose signature it checked; a release signed by
// another key, a SHA256SUMS changed after signing and a release without
// its signature are refused, and never built from source instead (Go is on
// PATH for those).
func TestPluginInstall_GitInstallVerifiesTheSignedChecksums(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	helms := Binaries(t)
	if len(helms) == 0 {
		return
	}
	for _, cmd := range []string{"gpg", "gpgconf"} {
		if _, err := exec.LookPath(cmd); err != nil {
			testenv.Missing(t, "%s not found: run make tools (it installs gnupg)", cmd)
		}
	}
	goreleaser := filepath.Join(testenv.ToolsDir(), "bin", "goreleaser")
	if _, err := os.Stat(goreleaser); err != nil {
		testenv.Missing(t, "goreleaser not found at %s: run make tools", goreleaser)
	}
	relKey, other := newGPGKey(ctx, t, "release"), newGPGKey(ctx, t, "other")
	version := PluginVersion(t)

	// The signed release, as GoReleaser makes it.
	dist := filepath.Join(t.TempDir(), "dist")
	start := time.Now()
	snap, err := snapshot.Build(ctx, snapshot.Options{
		Root: RepoRoot(t), Dist: dist, IDs: []string{"helm-state"}, HostOnly: true, Version: version, Sign: true,
		Goreleaser: goreleaser, Env: append(os.Environ(), "GNUPGHOME="+relKey.home, "GPG_FINGERPRINT="+relKey.fpr),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("signed snapshot built in %s", time.Since(start).Round(100*time.Millisecond))
	sums := snap.SHA256SUMS()
	sig, err := os.ReadFile(sums + ".sig")
	if err != nil {
		t.Fatalf("GoReleaser's signing step wrote no %s.sig: %v", filepath.Base(sums), err)
	}
	archive, err := os.ReadFile(filepath.Join(dist, ArchiveName(version)))
	if err != nil {
		t.Fatal(err)
	}
	sumsBody, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	// serve lays out a release with the given SHA256SUMS and signature
	// (none when nil) and serves it on loopback.
	serve := func(sumsBody, sig []byte) string {
		dir := t.TempDir()
		files := map[string][]byte{ArchiveName(version): archive, SumsName(version): sumsBody}
		if sig != nil {
			files[SumsName(version)+".sig"] = sig
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return release(t, dir)
	}
	gitURL := GitURL(ctx, t)
	path := Toolbox(t)
	goDir := filepath.Dir(mustLookPath(t, "go"))
	withGo := path + string(os.PathListSeparator) + goDir
	goVars := []string{"GOFLAGS=", "GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOPROXY=off"}

	signed := serve(sumsBody, sig)
	for _, h := range helms {
		t.Run(h.Name, func(t *testing.T) {
			u := newUser(t, h, path, "HELM_STATE_RELEASE_URL="+signed, "HELM_STATE_GPG_KEY="+relKey.pub)
			out, code := u.install(ctx, t, gitURL)
			if code != 0 || !strings.Contains(out, "good signature by "+relKey.fpr) || !strings.Contains(out, "(sha256 verified)") {
				t.Fatalf("install of the signed release: exit %d, want a good signature by %s and a verified checksum:\n%s", code, relKey.fpr, out)
			}
			if got := u.ok(ctx, t, "state", "version"); !strings.Contains(got, version) {
				t.Errorf("helm state version = %q, want %s", got, version)
			}
		})
	}

	h := helms[0]
	for _, c := range []struct {
		name, url, key, want string
	}{
		{"signed by another key", signed, other.pub, "does not verify"},
		{"checksums changed after signing", serve(append(append([]byte{}, sumsBody...), "0000  extra.tar.gz\n"...), sig), relKey.pub, "does not verify"},
		{"no signature", serve(sumsBody, nil), relKey.pub, "not installing without the signature"},
		{"key file missing", signed, filepath.Join(t.TempDir(), "nokey.asc"), "is not a readable file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := newUser(t, h, withGo, append([]string{"HELM_STATE_RELEASE_URL=" + c.url, "HELM_STATE_GPG_KEY=" + c.key}, goVars...)...)
			out, code := u.install(ctx, t, gitURL)
			if code == 0 || !strings.Contains(out, c.want) || strings.Contains(out, "building from source") {
				t.Fatalf("install: exit %d, want a refusal saying %q and no source build:\n%s", code, c.want, out)
			}
			if _, code := u.run(ctx, t, "state", "version"); code == 0 {
				t.Error("helm state runs after a refused install")
			}
		})
	}
}
