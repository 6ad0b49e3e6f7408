package commands

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
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

func TestApplyAround_FilesThenFlagsIntoTheRequest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := applyFlags{
		hooksFile:         write("hooks.yaml", "pre:\n  - {selector: app=db, container: pg, command: [psql, -c, CHECKPOINT], timeout: 20s}\n"),
		preHooks:          []string{"app=web: touch /tmp/maintenance"},
		postHooks:         []string{"app=cache: redis-cli FLUSHALL"},
		scriptsFile:       write("scripts.yaml", "post:\n  - script: shop/anonymize\n    variables_from_env: {SALT: SHOP_SALT}\n"),
		preScripts:        []string{"shop/stop-cron"},
		substitutionsFile: write("subs.yaml", "- {kinds: [Secret], old: staging, new: dev}\n"),
	}
	req := executor.Request{Options: executor.Options{Substitutions: []substitution.Rule{{Old: "a", New: "b"}}}}
	env := func(k string) (string, bool) { return map[string]string{"SHOP_SALT": "pepper"}[k], k == "SHOP_SALT" }
	if err := f.around(&req, env); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range append(slices.Clone(req.PreHooks), req.PostHooks...) {
		names = append(names, h.Name+" "+h.Selector+" "+strings.Join(h.Command, " "))
	}
	want := []string{"pre-0 app=db psql -c CHECKPOINT", "pre-1 app=web sh -c touch /tmp/maintenance", "post-0 app=cache sh -c redis-cli FLUSHALL"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("hooks %q, want %q", names, want)
	}
	if len(req.PreScripts) != 1 || req.PreScripts[0].Script != "shop/stop-cron" ||
		len(req.PostScripts) != 1 || req.PostScripts[0].Vars["SALT"] != "pepper" {
		t.Errorf("scripts pre %+v post %+v", req.PreScripts, req.PostScripts)
	}
	if len(req.Substitutions) != 2 || req.Substitutions[0].Old != "staging" || req.Substitutions[1].Old != "a" {
		t.Errorf("substitutions %+v, want the file's rule, then --set-substitution's", req.Substitutions)
	}
}

func TestApplyAround_MistakesAreUsageErrorsNamingTheFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("pre:\n  - {selector: a=b}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    applyFlags
		says string
	}{
		{applyFlags{hooksFile: missing}, "--hooks " + missing},
		{applyFlags{hooksFile: bad}, "--hooks: " + bad + ": pre[0].command: missing"},
		{applyFlags{preHooks: []string{"redis-cli FLUSHALL"}}, "--pre-hook \"redis-cli FLUSHALL\": want SELECTOR: COMMAND"},
		{applyFlags{scriptsFile: bad}, "--scripts: " + bad + `: unknown field "selector"`},
		{applyFlags{substitutionsFile: missing}, "--substitutions " + missing},
	} {
		err := tc.f.around(&executor.Request{}, func(string) (string, bool) { return "", false })
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("got %v, want a usage error saying %q", err, tc.says)
		}
	}
}
