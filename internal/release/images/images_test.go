package images_test

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/images"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

var testMeta = images.Meta{
	Version:  "v0.0.0-imagetest",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Created:  time.Unix(1700000000, 0).UTC(),
	Source:   images.DefaultSource,
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

func newBuilder(t *testing.T) *images.Builder {
	t.Helper()
	if _, err := os.Stat(images.DefaultCABundle); err != nil {
		testenv.Missing(t, "no CA bundle at %s (install ca-certificates)", images.DefaultCABundle)
	}
	return &images.Builder{RepoRoot: repoRoot(t), WorkDir: t.TempDir(), Meta: testMeta}
}

// Both images for both platforms take a while to cross-compile; the tests
// that only read them share one build.
var (
	sharedOnce  sync.Once
	sharedBuilt []images.Built
	sharedErr   error
)

func builtOnce(t *testing.T) []images.Built {
	t.Helper()
	b := newBuilder(t)
	sharedOnce.Do(func() {
		b.WorkDir = "" // a temporary directory, removed when Build returns
		sharedBuilt, sharedErr = b.Build(context.Background())
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedBuilt
}

func TestBuild_TwiceGivesTheSameDigests(t *testing.T) {
	first := builtOnce(t)
	again, err := newBuilder(t).Build(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(images.Components) || len(again) != len(first) {
		t.Fatalf("built %d and %d images, want %d", len(first), len(again), len(images.Components))
	}
	for i := range first {
		d1, _ := first[i].Index.Digest()
		d2, _ := again[i].Index.Digest()
		if d1 != d2 {
			t.Errorf("%s: first build %s, second %s: the build is not reproducible", first[i].Name, d1, d2)
		}
	}
	// The layouts on disk are byte-for-byte equal too.
	a, b := t.TempDir(), t.TempDir()
	if err := images.WriteLayouts(a, testMeta.Version, first); err != nil {
		t.Fatal(err)
	}
	if err := images.WriteLayouts(b, testMeta.Version, again); err != nil {
		t.Fatal(err)
	}
	for _, c := range images.Components {
		ia, _ := os.ReadFile(filepath.Join(a, c.Name, "index.json"))
		ib, _ := os.ReadFile(filepath.Join(b, c.Name, "index.json"))
		if len(ia) == 0 || string(ia) != string(ib) {
			t.Errorf("%s: index.json differs between builds:\n%s\n%s", c.Name, ia, ib)
		}
	}
	for _, img := range first {
		sizes, err := images.Sizes(img.Index)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sizes {
			t.Logf("%s %s: %.1f MiB compressed, %.1f MiB unpacked", img.Name, s.Platform.String(),
				float64(s.Compressed)/(1<<20), float64(s.Uncompressed)/(1<<20))
		}
	}
}

func TestPush_ToARealRegistry_PullsBackNonRootVersionedImagesWithoutAShell(t *testing.T) {
	built := builtOnce(t)
	reg := testenv.StartRegistry(t)
	dir := t.TempDir()
	if err := images.WriteLayouts(dir, testMeta.Version, built); err != nil {
		t.Fatal(err)
	}
	creds, err := images.CredentialsFromEnv(env(map[string]string{
		images.EnvRegistryUser: reg.User, images.EnvRegistryPassword: reg.Password,
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range images.Components {
		t.Run(c.Name, func(t *testing.T) {
			idx, version, err := images.ReadLayout(dir, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if version != testMeta.Version {
				t.Errorf("layout names version %q, want %q", version, testMeta.Version)
			}
			ref, err := images.Reference(reg.Host+"/unikube", c.Name, version, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := images.Push(t.Context(), idx, ref, images.PushOptions{Credentials: creds}); err != nil {
				t.Fatalf("push: %v", err)
			}

			pulled, err := remote.Index(ref, remote.WithContext(t.Context()),
				remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			want, _ := idx.Digest()
			if got, _ := pulled.Digest(); got != want {
				t.Errorf("pulled index %s, pushed %s", got, want)
			}
			im, err := pulled.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var platforms []string
			for _, d := range im.Manifests {
				platforms = append(platforms, d.Platform.String())
				img, err := pulled.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				checkImage(t, c, d.Platform, img)
			}
			if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
				t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
			}
			if im.Annotations[images.LabelVersion] != testMeta.Version {
				t.Errorf("index annotations %v lack the version", im.Annotations)
			}
		})
	}
}

// checkImage reads one pulled image: its config runs the binary as the
// non-root user with the OCI labels; its layers hold the binary, the CA
// bundle and passwd, and nothing a shell could be; the binary (on this
// machine's platform) reports the version in the labels.
func checkImage(t *testing.T, c images.Component, p *v1.Platform, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: config user %q, want 65532:65532 (non-root)", p, cf.Config.User)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/"+c.Name {
		t.Errorf("%s: entrypoint %v", p, cf.Config.Entrypoint)
	}
	labels := cf.Config.Labels
	for k, want := range map[string]string{
		images.LabelTitle: c.Name, images.LabelVersion: testMeta.Version, images.LabelRevision: testMeta.Revision,
		images.LabelCreated: "2023-11-14T22:13:20Z", images.LabelSource: images.DefaultSource,
	} {
		if labels[k] != want {
			t.Errorf("%s: label %s = %q, want %q", p, k, labels[k], want)
		}
	}
	if !cf.Created.Equal(testMeta.Created) {
		t.Errorf("%s: created %s, want %s", p, cf.Created.Time, testMeta.Created)
	}

	files := map[string][]byte{}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch base := path.Base(h.Name); base {
			case "sh", "bash", "ash", "dash", "busybox", "su", "sudo":
				t.Errorf("%s: layer has %s: no shell or setuid tool belongs in the image", p, h.Name)
			}
			if h.Typeflag == tar.TypeReg && (h.Name == c.Name || strings.HasPrefix(h.Name, "etc/")) {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				files[h.Name] = b
			} else {
				files[h.Name] = nil
			}
			if h.Mode&0o4000 != 0 {
				t.Errorf("%s: %s is setuid", p, h.Name)
			}
		}
		rc.Close()
	}
	if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd lacks the non-root user:\n%s", p, files["etc/passwd"])
	}
	if !strings.Contains(string(files["etc/ssl/certs/ca-certificates.crt"]), "BEGIN CERTIFICATE") {
		t.Errorf("%s: no CA certificates at /etc/ssl/certs/ca-certificates.crt", p)
	}
	bin := files[c.Name]
	if len(bin) == 0 {
		t.Fatalf("%s: no /%s in the layers", p, c.Name)
	}
	if p.Architecture != runtime.GOARCH {
		return
	}
	exe := filepath.Join(t.TempDir(), c.Name)
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), exe, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", c.Name, err, out)
	}
	if !strings.HasPrefix(string(out), c.Name+" "+testMeta.Version) || !strings.Contains(string(out), "commit "+testMeta.Revision) ||
		!strings.Contains(string(out), "built 2023-11-14T22:13:20Z") {
		t.Errorf("%s version says %q, want the image's version %s, commit and date (internal/buildinfo)", c.Name, out, testMeta.Version)
	}
}

func TestPush_WrongPasswordIsRefusedWithAClearError(t *testing.T) {
	built := builtOnce(t)
	reg := testenv.StartRegistry(t)
	const wrong = "not-the-password-4711"
	creds, err := images.CredentialsFromEnv(env(map[string]string{
		images.EnvRegistryUser: reg.User, images.EnvRegistryPassword: wrong,
	}))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := images.Reference(reg.Host+"/unikube", built[0].Name, testMeta.Version, false)
	if err != nil {
		t.Fatal(err)
	}
	err = images.Push(t.Context(), built[0].Index, ref, images.PushOptions{Credentials: creds})
	var ae *images.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("push with a wrong password: %v, want an *images.AuthError", err)
	}
	msg := err.Error()
	t.Logf("refused: %s", msg)
	for _, want := range []string{reg.Host + "/unikube/unikube-agent", `"` + reg.User + `"`, images.EnvRegistryUser} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, wrong) {
		t.Errorf("error %q shows the password", msg)
	}
	if _, err := remote.Head(ref, remote.WithContext(t.Context()),
		remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password})); err == nil {
		t.Errorf("%s exists after a refused push", ref)
	}
}

func TestPush_UsesTheDockerConfigFilesCredentials(t *testing.T) {
	built := builtOnce(t)
	reg := testenv.StartRegistry(t)
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"),
		[]byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	creds, err := images.CredentialsFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := images.Reference(reg.Host+"/team/images", built[0].Name, "docker-config", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.Push(t.Context(), built[0].Index, ref, images.PushOptions{Credentials: creds}); err != nil {
		t.Fatalf("push with the Docker config file's credentials: %v", err)
	}
	if _, err := remote.Head(ref, remote.WithContext(t.Context()),
		remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password})); err != nil {
		t.Errorf("%s not in the registry after the push: %v", ref, err)
	}
}

func TestCredentialsFromEnv_HalfSetIsAnError(t *testing.T) {
	for _, e := range []map[string]string{
		{images.EnvRegistryUser: "ci"},
		{images.EnvRegistryPassword: "secret"},
	} {
		if _, err := images.CredentialsFromEnv(env(e)); err == nil {
			t.Errorf("CredentialsFromEnv(%v) succeeded, want an error asking for both", e)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestReference_NamesRegistryPathImageAndTag(t *testing.T) {
	ref, err := images.Reference("ghcr.io/acme/", "unikube-agent", "v1.2.3", false)
	if err != nil || ref.String() != "ghcr.io/acme/unikube-agent:v1.2.3" {
		t.Errorf("Reference = %v, %v", ref, err)
	}
	for _, bad := range []string{"", "https://ghcr.io/acme", "Bad Registry"} {
		if _, err := images.Reference(bad, "unikube-agent", "v1", false); err == nil {
			t.Errorf("Reference(%q) succeeded, want an error", bad)
		}
	}
	insecure, err := images.Reference("registry.internal:5000", "unikube-agent", "v1", true)
	if err != nil || insecure.Scheme() != "http" {
		t.Errorf("insecure reference: scheme %q, %v", insecure.Scheme(), err)
	}
}

func TestParseEpoch(t *testing.T) {
	got, err := images.ParseEpoch("1700000000")
	if err != nil || !got.Equal(testMeta.Created) {
		t.Errorf("ParseEpoch = %v, %v", got, err)
	}
	for _, bad := range []string{"", "-1", "1.5", "17e8", "now"} {
		if _, err := images.ParseEpoch(bad); err == nil {
			t.Errorf("ParseEpoch(%q) succeeded", bad)
		}
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestLDFlags_SetTheBuildinfoVariables: the images' binaries get their
// version, commit and date through internal/buildinfo, the names the
// release (GoReleaser) sets too.
func TestLDFlags_SetTheBuildinfoVariables(t *testing.T) {
	const pkg = "github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	got := images.LDFlags(testMeta)
	want := "-X " + pkg + ".version=v0.0.0-imagetest -X " + pkg + ".commit=0123456789abcdef0123456789abcdef01234567 -X " + pkg + ".date=2023-11-14T22:13:20Z"
	if got != want {
		t.Fatalf("LDFlags = %q\nwant     %q", got, want)
	}
	if got := images.LDFlags(images.Meta{Version: "dev"}); got != "-X "+pkg+".version=dev" {
		t.Fatalf("LDFlags without commit and date = %q", got)
	}
}
