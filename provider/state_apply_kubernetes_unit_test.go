package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func TestPreviousRecord_IsTheLastSuccessfulApplyOfAnotherVersion(t *testing.T) {
	rec := func(rev int, digest, status string) records.Record {
		return records.Record{Revision: rev, Digest: digest, Status: status}
	}
	cases := []struct {
		name    string
		rs      []records.Record
		current string
		want    int // revision; 0 for none
	}{
		{"first apply", []records.Record{rec(1, "a", records.StatusApplied)}, "a", 0},
		{"one before", []records.Record{rec(1, "a", records.StatusSuperseded), rec(2, "b", records.StatusApplied)}, "b", 1},
		{"failed ones are skipped", []records.Record{
			rec(1, "a", records.StatusSuperseded), rec(2, "c", records.StatusFailed), rec(3, "b", records.StatusApplied)}, "b", 1},
		{"re-applies of the same version are skipped", []records.Record{
			rec(1, "a", records.StatusSuperseded), rec(2, "b", records.StatusSuperseded), rec(3, "b", records.StatusApplied)}, "b", 1},
		{"only before the current version", []records.Record{
			rec(1, "a", records.StatusSuperseded), rec(2, "b", records.StatusSuperseded), rec(3, "c", records.StatusApplied)}, "b", 1},
		{"current never recorded", []records.Record{rec(1, "a", records.StatusApplied)}, "z", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := previousRecord(tc.rs, tc.current)
			switch {
			case tc.want == 0 && got != nil:
				t.Errorf("got revision %d, want none", got.Revision)
			case tc.want != 0 && (got == nil || got.Revision != tc.want):
				t.Errorf("got %+v, want revision %d", got, tc.want)
			}
		})
	}
}

func TestKubernetesTarget_MappingsCoverEveryComponent(t *testing.T) {
	m := &statepkg.Manifest{Components: []statepkg.Component{
		{Name: "db", Kind: statepkg.KindPostgres},
		{Name: "cache", Kind: statepkg.KindRedis},
		{Name: "config", Kind: statepkg.KindKubernetes},
	}}
	tgt := &kubernetesTarget{Selector: "app.kubernetes.io/instance=shop", Mappings: map[string]discovery.Mapping{
		"cache": {Component: "cache", Workload: "Deployment/cache"},
		"db":    {Component: "db", Quiesce: []string{"Deployment/web"}, Options: map[string]string{"jobs": "2"}},
	}}
	ms, err := tgt.mappings(m, "in-place")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("mappings %+v, want 3", ms)
	}
	db, cache, config := ms[0], ms[1], ms[2]
	if db.Selector != tgt.Selector || db.Kind != statepkg.KindPostgres || db.Options["strategy"] != "in-place" || db.Options["jobs"] != "2" || len(db.Quiesce) != 1 {
		t.Errorf("db mapping %+v: want the release selector, kind, strategy and its own options and quiesce", db)
	}
	if cache.Workload != "Deployment/cache" || cache.Selector != "" {
		t.Errorf("cache mapping %+v: want the named workload only", cache)
	}
	if config.Selector != "" || config.Workload != "" || config.Kind != statepkg.KindKubernetes {
		t.Errorf("config mapping %+v: kubernetes components need no workload", config)
	}

	noSel := &kubernetesTarget{Mappings: map[string]discovery.Mapping{}}
	if _, err := noSel.mappings(m, ""); err == nil || !strings.Contains(err.Error(), "db, cache") {
		t.Errorf("without release or selector: %v, want the unmapped components named", err)
	}
	extra := &kubernetesTarget{Selector: "a=b", Mappings: map[string]discovery.Mapping{"nope": {Component: "nope"}}}
	if _, err := extra.mappings(m, ""); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("mapping of an unknown component: %v", err)
	}
}

func TestConnection_BlockOverridesTheProviderDefaultAsAWhole(t *testing.T) {
	def := KubernetesConfig{ConfigPath: "/etc/kube/default", ConfigContext: "ci"}
	direct := KubernetesConfig{Host: "https://k8s:6443", Token: "provider-token", ClusterCACertificate: "PEM"}
	cases := []struct {
		name  string
		block kubernetesTargetModel
		def   KubernetesConfig
		check func(t *testing.T, host, token, kubeconfig, context string)
	}{
		{"provider default", kubernetesTargetModel{}, def, func(t *testing.T, host, token, kc, ctx string) {
			if kc != "/etc/kube/default" || ctx != "ci" || host != "" {
				t.Errorf("got %q %q %q", host, kc, ctx)
			}
		}},
		{"provider direct", kubernetesTargetModel{}, direct, func(t *testing.T, host, token, kc, ctx string) {
			if host != "https://k8s:6443" || token != "provider-token" || kc != "" {
				t.Errorf("got %q %q %q", host, token, kc)
			}
		}},
		{"block context keeps the default kubeconfig", kubernetesTargetModel{ConfigContext: types.StringValue("dev")}, def,
			func(t *testing.T, host, token, kc, ctx string) {
				if kc != "/etc/kube/default" || ctx != "dev" {
					t.Errorf("got %q %q", kc, ctx)
				}
			}},
		{"block host never takes the provider's token", kubernetesTargetModel{Host: types.StringValue("https://other:6443")}, direct,
			func(t *testing.T, host, token, kc, ctx string) {
				if host != "https://other:6443" || token != "" {
					t.Errorf("got %q %q", host, token)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connection(tc.block, tc.def)
			tc.check(t, c.Host, c.Token, c.Kubeconfig, c.Context)
		})
	}
}
