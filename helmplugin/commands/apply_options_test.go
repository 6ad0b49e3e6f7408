package commands

import (
	"reflect"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
)

func TestApplyOptions_SetsDriverOptionsPerComponent(t *testing.T) {
	mappings := []discovery.Mapping{{Component: "db"}, {Component: "uploads", Options: map[string]string{"owner": "1000:1000"}}}
	if err := applyOptions(mappings, []string{"db.jobs=4", "db.data_load=pg_restore", "uploads.verify=true", "db.restore_settings=work_mem=64MB"}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"jobs": "4", "data_load": "pg_restore", "restore_settings": "work_mem=64MB"},
		{"owner": "1000:1000", "verify": "true"},
	}
	for i, m := range mappings {
		if !reflect.DeepEqual(m.Options, want[i]) {
			t.Errorf("%s options %v, want %v", m.Component, m.Options, want[i])
		}
	}
}

func TestApplyOptions_MistakesAreUsageErrors(t *testing.T) {
	for _, tc := range []struct{ option, says string }{
		{"jobs=4", "want component.key=value"},
		{"db.jobs", "want component.key=value"},
		{".jobs=4", "want component.key=value"},
		{"cache.jobs=4", `no component "cache" (it has: db)`},
	} {
		err := applyOptions([]discovery.Mapping{{Component: "db"}}, []string{tc.option})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("--option %s: %v, want an error saying %q", tc.option, err, tc.says)
		}
		if ExitCode(err) != ExitUsage {
			t.Errorf("--option %s: exit code %d, want %d (usage)", tc.option, ExitCode(err), ExitUsage)
		}
	}
}

// TestAgentResourcesFlag: --agent-resources sets the resources of the
// named component's agent Job; a mistake is a usage error (exit 2).
func TestAgentResourcesFlag(t *testing.T) {
	mappings := []discovery.Mapping{{Component: "db"}, {Component: "uploads"}}
	if err := agentResources(mappings, []string{"db=cpu=500m,memory=1Gi"}); err != nil {
		t.Fatal(err)
	}
	if mappings[0].Resources == nil || mappings[0].Resources.Limits.Memory().String() != "1Gi" || mappings[1].Resources != nil {
		t.Fatalf("resources %+v / %+v, want db's only", mappings[0].Resources, mappings[1].Resources)
	}
	for _, spec := range []string{"cpu=1", "cache=cpu=1", "db=cpu=fast", "db=gpu=1"} {
		err := agentResources([]discovery.Mapping{{Component: "db"}}, []string{spec})
		if err == nil || !strings.Contains(err.Error(), "--agent-resources") || ExitCode(err) != ExitUsage {
			t.Errorf("--agent-resources %s: %v (exit %d), want a usage error", spec, err, ExitCode(err))
		}
	}
}

func TestApplyFlags_MapNamesAWorkloadOrAPVC(t *testing.T) {
	f := applyFlags{maps: []string{"db=StatefulSet/shop-db", "uploads=pvc/shop-uploads"}, timeout: 1}
	ms, _, err := f.parse()
	if err != nil {
		t.Fatal(err)
	}
	want := []discovery.Mapping{{Component: "db", Workload: "StatefulSet/shop-db"}, {Component: "uploads", PVC: "shop-uploads"}}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("mappings %+v, want %+v", ms, want)
	}
	for _, bad := range []string{"db", "db=", "db=Pod/x", "uploads=pvc/"} {
		f := applyFlags{maps: []string{bad}, timeout: 1}
		if _, _, err := f.parse(); err == nil || !strings.Contains(err.Error(), "--map") {
			t.Errorf("--map %s: %v, want an error naming --map", bad, err)
		}
	}
}
