package snapshot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type build struct {
	ID     string   `json:"id"`
	Binary string   `json:"binary"`
	Goos   []string `json:"goos"`
	Goarch []string `json:"goarch"`
	Hooks  struct {
		Post []string `json:"post"`
	} `json:"hooks"`
}

type archive struct {
	ID  string   `json:"id"`
	IDs []string `json:"ids"`
}

// narrowed parses what narrow makes of the repository's configuration.
func narrowed(t *testing.T, ids []string, hostOnly bool, goos, goarch string) (builds map[string]build, archives map[string]archive, dist string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	out, err := narrow(raw, "/tmp/d", ids, hostOnly, goos, goarch, "")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Dist     string    `json:"dist"`
		Builds   []build   `json:"builds"`
		Archives []archive `json:"archives"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	builds, archives = map[string]build{}, map[string]archive{}
	for _, b := range cfg.Builds {
		builds[b.ID] = b
	}
	for _, a := range cfg.Archives {
		archives[a.ID] = a
	}
	return builds, archives, cfg.Dist
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestNarrow_HostOnlyKeepsEveryBuildForThisPlatform(t *testing.T) {
	builds, archives, dist := narrowed(t, nil, true, "linux", "arm64")
	if dist != "/tmp/d" {
		t.Errorf("dist = %q", dist)
	}
	want := []string{"helm-state", "provider", "unikube-agent", "unikube-platform"}
	if got := keys(builds); !slices.Equal(got, want) {
		t.Errorf("builds %v, want %v", got, want)
	}
	if got := keys(archives); !slices.Equal(got, want) {
		t.Errorf("archives %v, want %v", got, want)
	}
	for id, b := range builds {
		if !slices.Equal(b.Goos, []string{"linux"}) || !slices.Equal(b.Goarch, []string{"arm64"}) {
			t.Errorf("build %s targets %v/%v, want linux/arm64 only", id, b.Goos, b.Goarch)
		}
	}
	// Templates and hooks pass through untouched.
	if b := builds["provider"]; b.Binary != "{{ .ProjectName }}_v{{ .Version }}" || len(b.Hooks.Post) != 1 || !strings.Contains(b.Hooks.Post[0], "_manifest.json") {
		t.Errorf("provider build changed: %v", b)
	}
}

func TestNarrow_DropsBuildsAndArchivesNotForThePlatformOrNotAsked(t *testing.T) {
	builds, archives, _ := narrowed(t, nil, true, "darwin", "arm64")
	if _, ok := builds["unikube-agent"]; ok {
		t.Error("the agent (Linux only) is built for darwin")
	}
	if _, ok := archives["unikube-agent"]; ok {
		t.Error("an agent archive without its build is kept")
	}
	builds, archives, _ = narrowed(t, []string{"provider"}, false, "linux", "amd64")
	if got := keys(builds); !slices.Equal(got, []string{"provider"}) {
		t.Errorf("builds %v, want only provider", got)
	}
	if got := keys(archives); !slices.Equal(got, []string{"provider"}) {
		t.Errorf("archives %v, want only provider", got)
	}
	if got := builds["provider"].Goarch; len(got) < 2 {
		t.Errorf("without HostOnly the provider still builds for %v only", got)
	}
}

func TestNarrow_AnUnknownBuildIsAnError(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := narrow(raw, "/tmp/d", []string{"unikube-agent"}, true, "darwin", "arm64", ""); err == nil || !strings.Contains(err.Error(), `"unikube-agent"`) {
		t.Errorf("err = %v, want one naming the build", err)
	}
}

func TestNarrow_VersionFixesTheSnapshotVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	out, err := narrow(raw, "/tmp/d", []string{"helm-state"}, true, "linux", "amd64", "v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Snapshot struct {
			VersionTemplate string `json:"version_template"`
		} `json:"snapshot"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Snapshot.VersionTemplate != "0.1.0" {
		t.Errorf("snapshot.version_template = %q, want 0.1.0", cfg.Snapshot.VersionTemplate)
	}
	if _, err := narrow(raw, "/tmp/d", nil, true, "linux", "amd64", "{{ .Env.HOME }}"); err == nil {
		t.Error("a template as version was accepted")
	}
}
