// Package snapshot builds release archives with GoReleaser from the
// repository's own .goreleaser.yaml (unsigned, unpublished: a snapshot) and
// installs the provider from them as users do: its zip in a filesystem
// mirror laid out as `terraform providers mirror` makes it, and a CLI
// configuration that sends Terraform there instead of to the registry.
//
// test/release and the quickstart use it, so what they run is the archive
// a release ships, not a binary from `go build`.
package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Provider address and names of the release, as .goreleaser.yaml and the
// Terraform registry spell them.
const (
	ProviderSource = "registry.terraform.io/unikubehq/unikube"
	ProjectName    = "terraform-provider-unikube"
	ConfigFile     = ".goreleaser.yaml"
)

// Options say what to build.
type Options struct {
	// Root is the repository (it holds .goreleaser.yaml).
	Root string
	// Dist receives the archives; GoReleaser empties it first.
	Dist string
	// IDs keeps only these builds and the archives made of them (all when
	// empty), e.g. "provider".
	IDs []string
	// HostOnly builds each kept build for this machine's OS and
	// architecture only (and drops builds that do not target it): the
	// same archives, minus the other platforms' minutes.
	HostOnly bool
	// Version fixes the snapshot's version (default: .goreleaser.yaml's
	// <next patch>-snapshot-<commit>), e.g. "0.1.0": the archives are then
	// named as the release of that version names them, which is what an
	// install hook reading plugin.yaml's version downloads.
	Version string
	// Sign runs the configuration's signing step (gpg with the key
	// GPG_FINGERPRINT names in Env, GNUPGHOME's keyring), as a release does;
	// a snapshot skips it otherwise.
	Sign bool
	// Goreleaser is the binary (default: goreleaser from PATH).
	Goreleaser string
	// Env is GoReleaser's environment (default: this process's).
	Env []string
	// Output receives GoReleaser's log (default: kept and quoted on failure).
	Output io.Writer
}

// Result is a finished snapshot.
type Result struct {
	Dist    string
	Version string // e.g. 0.1.1-snapshot-1a2b3c4: a pre-release version
}

// ErrNoGoreleaser says GoReleaser is not installed.
var ErrNoGoreleaser = errors.New("goreleaser is not installed: run make tools (it installs it into $UNIKUBE_TOOLS_DIR/bin)")

// Build runs `goreleaser release --snapshot --clean --skip=sign` (without
// --skip=sign when opts.Sign) with the repository's configuration, narrowed
// as opts say.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Root == "" || opts.Dist == "" {
		return nil, errors.New("snapshot: Root and Dist are required")
	}
	bin := opts.Goreleaser
	if bin == "" {
		p, err := exec.LookPath("goreleaser")
		if err != nil {
			return nil, ErrNoGoreleaser
		}
		bin = p
	}
	dist, err := filepath.Abs(opts.Dist)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(opts.Root, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read the release configuration: %w", err)
	}
	cfg, err := narrow(raw, dist, opts.IDs, opts.HostOnly, runtime.GOOS, runtime.GOARCH, opts.Version)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %s: %w", ConfigFile, err)
	}
	// The narrowed copy lives outside dist (GoReleaser empties dist) and
	// outside the repository.
	tmp, err := os.MkdirTemp("", "unikube-goreleaser-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	cfgPath := filepath.Join(tmp, "goreleaser.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}

	var log bytes.Buffer
	out := io.Writer(&log)
	if opts.Output != nil {
		out = io.MultiWriter(&log, opts.Output)
	}
	args := []string{"release", "--snapshot", "--clean", "--config", cfgPath}
	if !opts.Sign {
		args = append(args, "--skip=sign")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = opts.Root
	cmd.Env = opts.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, remoteFallback(ctx, opts.Root)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("goreleaser release --snapshot: %w\n%s", err, tail(log.String(), 40))
	}
	version, err := readVersion(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return nil, err
	}
	return &Result{Dist: dist, Version: version}, nil
}

// remoteFallback returns git configuration (as environment) naming the
// release's repository as remote "origin" when the checkout has no remote:
// GoReleaser reads the commit, its date and the tag only after the remote's
// URL, and without one a snapshot would be stamped commit "none" and no date.
func remoteFallback(ctx context.Context, root string) []string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "remote").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		return nil
	}
	return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=remote.origin.url",
		"GIT_CONFIG_VALUE_0=https://github.com/unikubehq/terraform-provider-unikube.git"}
}

// narrow returns the configuration with dist set, only the builds named by
// ids (all when empty) and, with hostOnly, only goos/goarch; archives whose
// builds are all gone are dropped with them. A version other than ""
// replaces the snapshot's version template.
func narrow(raw []byte, dist string, ids []string, hostOnly bool, goos, goarch, version string) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	cfg["dist"] = dist
	if version != "" {
		// A template of its own: a version holding "{{" is refused.
		if strings.Contains(version, "{{") {
			return nil, fmt.Errorf("version %q is not a plain version", version)
		}
		cfg["snapshot"] = map[string]any{"version_template": strings.TrimPrefix(version, "v")}
	}
	builds, _ := cfg["builds"].([]any)
	kept := map[string]bool{}
	var keepBuilds []any
	for _, b := range builds {
		build, ok := b.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("builds: an entry is not a mapping")
		}
		id, _ := build["id"].(string)
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		if hostOnly {
			if !listHas(build["goos"], goos) || !listHas(build["goarch"], goarch) {
				continue
			}
			build["goos"] = []any{goos}
			build["goarch"] = []any{goarch}
			delete(build, "ignore")
		}
		kept[id] = true
		keepBuilds = append(keepBuilds, build)
	}
	for _, id := range ids {
		if !kept[id] {
			return nil, fmt.Errorf("no build %q (for %s/%s) in builds", id, goos, goarch)
		}
	}
	cfg["builds"] = keepBuilds
	archives, _ := cfg["archives"].([]any)
	var keepArchives []any
	for _, a := range archives {
		archive, ok := a.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("archives: an entry is not a mapping")
		}
		var left []any
		for _, id := range asList(archive["ids"]) {
			if kept[id] {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			continue
		}
		archive["ids"] = left
		keepArchives = append(keepArchives, archive)
	}
	cfg["archives"] = keepArchives
	return yaml.Marshal(cfg)
}

func asList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func listHas(v any, want string) bool { return slices.Contains(asList(v), want) }

func readVersion(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("snapshot: goreleaser wrote no metadata: %w", err)
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Version == "" {
		return "", fmt.Errorf("snapshot: no version in %s (%v)", path, err)
	}
	return m.Version, nil
}

// ProviderZip is the path of the provider's archive for goos/goarch.
func (r *Result) ProviderZip(goos, goarch string) string {
	return filepath.Join(r.Dist, fmt.Sprintf("%s_%s_%s_%s.zip", ProjectName, r.Version, goos, goarch))
}

// HelmPluginArchive is the path of the `helm state` plugin's archive for
// goos/goarch.
func (r *Result) HelmPluginArchive(goos, goarch string) string {
	return filepath.Join(r.Dist, fmt.Sprintf("helm-state_%s_%s_%s.tar.gz", r.Version, goos, goarch))
}

// SHA256SUMS is the path of the checksum file (its signature, when signed,
// is this path plus ".sig").
func (r *Result) SHA256SUMS() string {
	return filepath.Join(r.Dist, fmt.Sprintf("%s_%s_SHA256SUMS", ProjectName, r.Version))
}

// Manifest is the path of the registry manifest under its release name.
func (r *Result) Manifest() string {
	return filepath.Join(r.Dist, fmt.Sprintf("%s_%s_manifest.json", ProjectName, r.Version))
}

// Mirror copies the provider's archive for goos/goarch into mirror in the
// packed layout of a filesystem mirror, the one `terraform providers
// mirror` makes: <mirror>/registry.terraform.io/unikubehq/unikube/<zip>.
// It returns the zip's path there.
func (r *Result) Mirror(mirror, goos, goarch string) (string, error) {
	src := r.ProviderZip(goos, goarch)
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("snapshot: the release has no provider archive for %s/%s: %w", goos, goarch, err)
	}
	dir := filepath.Join(mirror, filepath.FromSlash(ProviderSource))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Older snapshots in the mirror would only confuse version selection.
	old, _ := filepath.Glob(filepath.Join(dir, ProjectName+"_*.zip"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return "", err
		}
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return "", err
	}
	return dst, nil
}

// CLIConfig is a Terraform CLI configuration (TF_CLI_CONFIG_FILE) that
// installs this provider from mirror and nothing else from the network.
func CLIConfig(mirror string) string {
	return fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = [%q]
  }
  direct {
    exclude = [%q]
  }
}
`, mirror, ProviderSource, ProviderSource)
}

// RequiredProvider is a terraform block requiring exactly version of the
// provider. A snapshot's version is a pre-release, which Terraform selects
// only when a configuration names it exactly; as an override file
// (*_override.tf) it pins a configuration that already requires the provider.
func RequiredProvider(version string) string {
	return fmt.Sprintf(`terraform {
  required_providers {
    unikube = {
      source  = "unikubehq/unikube"
      version = "= %s"
    }
  }
}
`, version)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
