package snapshot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// narrowed parses what narrow makes of the repository's configuration.
func narrowed(t *testing.T, ids []string, hostOnly bool, goos, goarch string) (builds, archives map[string]map[string]any, dist string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	out, err := narrow(raw, "/tmp/d", ids, hostOnly, goos, goarch)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	builds, archives = map[string]map[string]any{}, map[string]map[string]any{}
	for _, b := range cfg["builds"].([]any) {
		m := b.(map[string]any)
		builds[m["id"].(string)] = m
	}
	for _, a := range cfg["archives"].([]any) {
		m := a.(map[string]any)
		archives[m["id"].(string)] = m
	}
	return builds, archives, cfg["dist"].(string)
}

func keys(m map[string]map[string]any) []string {
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
		if !slices.Equal(asList(b["goos"]), []string{"linux"}) || !slices.Equal(asList(b["goarch"]), []string{"arm64"}) {
			t.Errorf("build %s targets %v/%v, want linux/arm64 only", id, b["goos"], b["goarch"])
		}
	}
	// Templates and hooks pass through untouched.
	if b := builds["provider"]; b["binary"] != "{{ .ProjectName }}_v{{ .Version }}" || !strings.Contains(asList(b["hooks"].(map[string]any)["post"])[0], "_manifest.json") {
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
	if got := asList(builds["provider"]["goos"]); len(got) < 2 {
		t.Errorf("without HostOnly the provider still builds for %v only", got)
	}
}

func TestNarrow_AnUnknownBuildIsAnError(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := narrow(raw, "/tmp/d", []string{"unikube-agent"}, true, "darwin", "arm64"); err == nil || !strings.Contains(err.Error(), `"unikube-agent"`) {
		t.Errorf("err = %v, want one naming the build", err)
	}
}
