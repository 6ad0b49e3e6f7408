package commands

import (
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func shopRelease() *discovery.Release {
	return &discovery.Release{Name: "shop", Namespace: "staging", Config: []discovery.ConfigObject{
		{Kind: "ConfigMap", Name: "shop-web"},
		{Kind: "ConfigMap", Name: "shop-cache", Labels: map[string]string{"tier": "cache"}},
		{Kind: "Secret", Name: "shop-db", Type: "Opaque"},
		{Kind: "Secret", Name: "shop-token", Type: "kubernetes.io/service-account-token"},
		{Kind: "Secret", Name: "sh.helm.release.v1.shop.v1", Type: "helm.sh/release.v1", Labels: map[string]string{"owner": "helm"}},
		{Kind: "Secret", Name: "shop-apply", Labels: map[string]string{"owner": "unikube-state"}},
	}}
}

func TestConfigMapping_TakesTheReleaseManifestsOwnObjects(t *testing.T) {
	cases := []struct {
		name     string
		selector string
		excludes []string
		want     map[string]string
	}{
		{"the manifest's ConfigMaps and Secrets, never Helm records, SA tokens or ours", "", nil,
			map[string]string{"names": "ConfigMap/shop-cache,ConfigMap/shop-web,Secret/shop-db"}},
		{"exclude by name", "", []string{"ConfigMap/shop-cache", "shop-db"},
			map[string]string{"names": "ConfigMap/shop-web", "exclude": "ConfigMap/shop-cache,shop-db"}},
		{"exclude by label", "", []string{"tier=cache"},
			map[string]string{"names": "ConfigMap/shop-web,Secret/shop-db", "exclude_selectors": "tier=cache"}},
		{"a selector instead of the manifest", "app=shop", []string{"tier in (cache)", "tier=x"},
			map[string]string{"selector": "app=shop", "exclude_selectors": "tier in (cache);tier=x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := configMapping(shopRelease(), tc.selector, tc.excludes)
			if err != nil {
				t.Fatal(err)
			}
			if m.Component != ConfigComponent || m.Kind != statepkg.KindKubernetes {
				t.Errorf("mapping %s (%s), want %s (kubernetes)", m.Component, m.Kind, ConfigComponent)
			}
			if len(m.Options) != len(tc.want) {
				t.Errorf("options %v, want %v", m.Options, tc.want)
			}
			for k, v := range tc.want {
				if m.Options[k] != v {
					t.Errorf("option %s = %q, want %q", k, m.Options[k], v)
				}
			}
		})
	}
}

func TestConfigMapping_FallsBackToTheInstanceLabel(t *testing.T) {
	m, err := configMapping(&discovery.Release{Name: "shop"}, "", nil)
	if err != nil || m.Options["selector"] != "app.kubernetes.io/instance=shop" || m.Options["names"] != "" {
		t.Errorf("a release whose manifest makes no ConfigMap or Secret: %v %v", m.Options, err)
	}
}

func TestConfigMapping_RefusesBadInputAndNothingToTake(t *testing.T) {
	for _, tc := range []struct {
		rel      *discovery.Release
		selector string
		excludes []string
		want     string
	}{
		{shopRelease(), "", []string{"tier in (cache"}, `--exclude "tier in (cache"`},
		{shopRelease(), "", []string{"a,b"}, "one name per --exclude"},
		{shopRelease(), "app in (", nil, `--config-selector "app in ("`},
		{&discovery.Release{Name: "x", Config: []discovery.ConfigObject{{Kind: "Secret", Name: "sh.helm.release.v1.x.v1"}}}, "", nil,
			"release x has no ConfigMap or Secret of its own"},
	} {
		if _, err := configMapping(tc.rel, tc.selector, tc.excludes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("configMapping(%v, %q, %v) = %v, want an error with %q", tc.rel.Name, tc.selector, tc.excludes, err, tc.want)
		}
	}
}

func TestWithConfig_ReplacesOrAppendsAndUnscopedKubeIsFound(t *testing.T) {
	ms := []discovery.Mapping{{Component: "db", Kind: statepkg.KindPostgres}, {Component: "config", Kind: statepkg.KindKubernetes}}
	if got := unscopedKube(ms); len(got) != 1 || got[0] != 1 {
		t.Errorf("unscopedKube = %v, want [1]", got)
	}
	cfg := discovery.Mapping{Component: "config", Kind: statepkg.KindKubernetes, Options: map[string]string{"names": "ConfigMap/a"}}
	got, err := withConfig(ms, cfg)
	if err != nil || len(got) != 2 || got[1].Options["names"] != "ConfigMap/a" {
		t.Errorf("withConfig replacing: %v %v", got, err)
	}
	if _, err := withConfig([]discovery.Mapping{{Component: "config", Kind: statepkg.KindRedis}}, cfg); err == nil {
		t.Error("withConfig over a redis component named config: no error")
	}
	if got, _ := withConfig(nil, cfg); len(got) != 1 {
		t.Errorf("withConfig appending: %v", got)
	}
}
