package commands

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	kubedriver "github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// ConfigComponent is the name capture --config gives the component of a
// release's ConfigMaps and Secrets.
const ConfigComponent = "config"

// instanceLabel is the label Helm charts put on what a release makes.
const instanceLabel = "app.kubernetes.io/instance"

// configMapping chooses the ConfigMaps and Secrets of release rel that a
// capture takes as one `kubernetes` component: those matching selector
// when given; else those the release's manifest makes; else (a chart
// whose objects an operator makes) those labelled with Helm's instance
// label. Helm's release records, service-account tokens and
// unikube-state's own objects are never taken. excludes are names
// ("ConfigMap/NAME", "Secret/NAME" or a bare name) or label selectors
// ("tier=cache"): what one of them names or matches is left out.
func configMapping(rel *discovery.Release, selector string, excludes []string) (discovery.Mapping, error) {
	m := discovery.Mapping{Component: ConfigComponent, Kind: statepkg.KindKubernetes, Options: map[string]string{}}
	var names, sels []string
	for _, e := range excludes {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if strings.ContainsAny(e, "=!() ") {
			if _, err := labels.Parse(e); err != nil {
				return m, usageErrorf("--exclude %q: not a name (ConfigMap/NAME, Secret/NAME, NAME) nor a label selector: %v", e, err)
			}
			if strings.Contains(e, ";") {
				return m, usageErrorf("--exclude %q: one label selector per --exclude", e)
			}
			sels = append(sels, e)
			continue
		}
		if strings.Contains(e, ",") {
			return m, usageErrorf("--exclude %q: one name per --exclude", e)
		}
		names = append(names, e)
	}
	if len(names) > 0 {
		m.Options[kubedriver.OptionExclude] = strings.Join(names, ",")
	}
	if len(sels) > 0 {
		m.Options[kubedriver.OptionExcludeSelectors] = strings.Join(sels, ";")
	}
	if selector != "" {
		if _, err := labels.Parse(selector); err != nil {
			return m, usageErrorf("--config-selector %q: %v", selector, err)
		}
		m.Options["selector"] = selector
		return m, nil
	}
	if len(rel.Config) == 0 {
		m.Options["selector"] = instanceLabel + "=" + rel.Name
		return m, nil
	}
	var take []string
	for _, o := range rel.Config {
		ref := o.Kind + "/" + o.Name
		if kubedriver.Protected(o.Kind, o.Name, o.Type, o.Labels) != "" ||
			slices.Contains(names, o.Name) || slices.Contains(names, ref) || matchesAny(sels, o.Labels) {
			continue
		}
		if !slices.Contains(take, ref) {
			take = append(take, ref)
		}
	}
	if len(take) == 0 {
		return m, fmt.Errorf("release %s has no ConfigMap or Secret of its own to capture (its manifest makes only Helm records, service-account tokens or excluded objects): pass --config-selector", rel.Name)
	}
	slices.Sort(take) // Helm 3 and 4 order a manifest differently
	m.Options["names"] = strings.Join(take, ",")
	return m, nil
}

// matchesAny reports whether one of the (valid) label selectors matches.
func matchesAny(sels []string, lbls map[string]string) bool {
	for _, s := range sels {
		if sel, err := labels.Parse(s); err == nil && sel.Matches(labels.Set(lbls)) {
			return true
		}
	}
	return false
}

// withConfig puts the config mapping into ms: in place of a `kubernetes`
// component of the same name, else appended.
func withConfig(ms []discovery.Mapping, cfg discovery.Mapping) ([]discovery.Mapping, error) {
	for i, m := range ms {
		if m.Component == cfg.Component {
			if m.Kind != statepkg.KindKubernetes {
				return nil, usageErrorf("--config: the state already has a %s component named %s", m.Kind, m.Component)
			}
			ms[i] = cfg
			return ms, nil
		}
	}
	return append(ms, cfg), nil
}

// unscopedKube are the `kubernetes` components of ms that say nothing of
// what they take (a component of an earlier version mapped by name): left
// so, they would take every ConfigMap and Secret of the namespace.
func unscopedKube(ms []discovery.Mapping) []int {
	var out []int
	for i, m := range ms {
		if m.Kind == statepkg.KindKubernetes && m.Selector == "" && len(m.Options) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// configTarget says what a `kubernetes` mapping takes, for the plan.
func configTarget(m discovery.Mapping) string {
	var parts []string
	if v := m.Options["names"]; v != "" {
		parts = append(parts, v)
	}
	if m.Selector != "" {
		parts = append(parts, "selector "+m.Selector)
	}
	if v := m.Options["selector"]; v != "" {
		parts = append(parts, "selector "+v)
	}
	if v := m.Options[kubedriver.OptionExclude]; v != "" {
		parts = append(parts, "except "+v)
	}
	if v := m.Options[kubedriver.OptionExcludeSelectors]; v != "" {
		parts = append(parts, "except "+strings.ReplaceAll(v, ";", ", "))
	}
	if len(parts) == 0 {
		return "ConfigMaps and Secrets"
	}
	return strings.Join(parts, "; ")
}
