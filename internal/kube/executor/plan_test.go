package executor

import (
	"errors"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var shopManifest = &statepkg.Manifest{Components: []statepkg.Component{
	{Name: "db", Kind: statepkg.KindPostgres, Size: 100},
	{Name: "cache", Kind: statepkg.KindRedis},
	{Name: "uploads", Kind: statepkg.KindVolume},
	{Name: "config", Kind: statepkg.KindKubernetes},
}}

func byComponent(ms []discovery.Mapping) map[string]discovery.Mapping {
	out := map[string]discovery.Mapping{}
	for _, m := range ms {
		out[m.Component] = m
	}
	return out
}

func TestMapComponents_ExplicitThenSelectorWithTheStrategyForEveryDataComponent(t *testing.T) {
	req := Request{Selector: "app.kubernetes.io/instance=shop", Strategy: "in-place", Explicit: []discovery.Mapping{
		{Component: "cache", Workload: "Deployment/cache"},
		{Component: "db", Quiesce: []string{"Deployment/web"}, Options: map[string]string{"jobs": "2"}},
		{Component: "uploads", Options: map[string]string{"strategy": "kept"}},
	}}
	ms, err := MapComponents(shopManifest, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := byComponent(ms)
	if len(ms) != 4 {
		t.Fatalf("mappings %+v, want one per component", ms)
	}
	if db := got["db"]; db.Selector != req.Selector || db.Kind != statepkg.KindPostgres || db.Options["strategy"] != "in-place" || db.Options["jobs"] != "2" || len(db.Quiesce) != 1 {
		t.Errorf("db %+v: want the selector, its kind, the strategy and its own options and quiesce", db)
	}
	if c := got["cache"]; c.Workload != "Deployment/cache" || c.Selector != "" || c.Options["strategy"] != "in-place" {
		t.Errorf("cache %+v: want the named workload and the strategy", c)
	}
	if u := got["uploads"]; u.Options["strategy"] != "kept" {
		t.Errorf("uploads %+v: a component's own strategy option wins", u)
	}
	if c := got["config"]; c.Selector != "" || c.Workload != "" || c.Options["strategy"] != "" {
		t.Errorf("config %+v: kubernetes components need no workload and take no strategy", c)
	}
	if req.Explicit[1].Options["strategy"] != "" {
		t.Error("MapComponents changed the request's options")
	}
}

func TestMapComponents_HelmReleaseRecordPlacesTheRest(t *testing.T) {
	rel := &discovery.Release{Name: "shop", Workloads: []discovery.ReleaseWorkload{
		{Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "shop-postgresql"}, Images: []string{"postgres:16"}},
		{Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "shop-redis"}, Images: []string{"redis:7"}},
		{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: "shop-web"}, Images: []string{"nginx"}, Claims: []string{"shop-uploads", "shop-tmp"}},
	}}
	req := Request{Selector: "app.kubernetes.io/instance=shop", Explicit: []discovery.Mapping{{Component: "uploads", PVC: "shop-uploads"}}}
	ms, err := MapComponents(shopManifest, req, rel)
	if err != nil {
		t.Fatal(err)
	}
	got := byComponent(ms)
	if got["db"].Workload != "StatefulSet/shop-postgresql" || got["cache"].Workload != "StatefulSet/shop-redis" {
		t.Errorf("databases %+v", ms)
	}
	if u := got["uploads"]; u.Workload != "Deployment/shop-web" || u.PVC != "shop-uploads" {
		t.Errorf("uploads %+v: want the PVC it names and the workload mounting it", u)
	}
}

func TestMapComponents_SubsetAndRefusals(t *testing.T) {
	ms, err := MapComponents(shopManifest, Request{Selector: "a=b", Components: []string{"db"}}, nil)
	if err != nil || len(ms) != 1 || ms[0].Component != "db" {
		t.Errorf("subset db: %+v, %v; want db only", ms, err)
	}
	var ue *UnmappedError
	if _, err := MapComponents(shopManifest, Request{}, nil); !errors.As(err, &ue) || len(ue.Components) != 3 {
		t.Errorf("without release or selector: %v, want the three data components named", err)
	}
	var uc *UnknownComponentError
	if _, err := MapComponents(shopManifest, Request{Selector: "a=b", Explicit: []discovery.Mapping{{Component: "nope"}}}, nil); !errors.As(err, &uc) || uc.Component != "nope" {
		t.Errorf("mapping of an unknown component: %v", err)
	}
	if _, err := MapComponents(shopManifest, Request{Selector: "a=b", Components: []string{"nope"}}, nil); !errors.As(err, &uc) {
		t.Errorf("subset with an unknown component: %v", err)
	}
	var dm *DuplicateMappingError
	if _, err := MapComponents(shopManifest, Request{Selector: "a=b", Explicit: []discovery.Mapping{{Component: "db"}, {Component: "db"}}}, nil); !errors.As(err, &dm) {
		t.Errorf("two mappings of db: %v", err)
	}
}

func TestRecordAction_ComparesEachComponentWithTheRecordItWentThrough(t *testing.T) {
	v1 := &records.Record{Revision: 1, Digest: "sha256:one", Status: records.StatusSuperseded}
	v2 := &records.Record{Revision: 2, Digest: "sha256:two", Status: records.StatusApplied}
	failed := &records.Record{Revision: 3, Digest: "sha256:two", Status: records.StatusFailed, Error: "db: boom"}
	cases := []struct {
		name   string
		plan   Plan
		held   *records.Record
		action string
	}{
		{"holds it", Plan{Digest: "sha256:two", Last: v2}, v2, "skip"},
		{"holds another", Plan{Digest: "sha256:two", Last: v2}, v1, "replace"},
		{"forced", Plan{Digest: "sha256:two", Last: v2, Force: true}, v2, "replace"},
		{"never applied", Plan{Digest: "sha256:two"}, nil, "replace"},
		{"failed last time", Plan{Digest: "sha256:two", Last: failed}, nil, "replace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if a, reason := recordAction(&tc.plan, tc.held); a != tc.action || reason == "" {
				t.Errorf("got %s (%s), want %s with a reason", a, reason, tc.action)
			}
		})
	}
}
