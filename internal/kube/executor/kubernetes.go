package executor

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	kubedriver "github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// `kubernetes` components (ConfigMaps/Secrets) need nothing but the API
// server, so the executor restores and captures them in its own process
// through the kubernetes driver instead of in an agent Job.

// kubeTarget is one `kubernetes` component of an apply.
type kubeTarget struct {
	comp    statepkg.Component
	target  driver.Target
	quiesce []quiesce.Workload
}

// splitKube separates the mappings of `kubernetes` components (their Kind
// set) from those served by agent Jobs.
func splitKube(ms []discovery.Mapping) (kube, rest []discovery.Mapping) {
	for _, m := range ms {
		if m.Kind == statepkg.KindKubernetes {
			kube = append(kube, m)
		} else {
			rest = append(rest, m)
		}
	}
	return kube, rest
}

// validateRules checks every substitution rule before anything happens.
func validateRules(rules []substitution.Rule) error {
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("substitution rule %d (%q → %q): %w", i, r.Old, r.New, err)
		}
	}
	return nil
}

// kubeTargets resolves the `kubernetes` components of manifest m.
func kubeTargets(m *statepkg.Manifest, digest, ns string, ms []discovery.Mapping) ([]kubeTarget, error) {
	byName := map[string]statepkg.Component{}
	for _, c := range m.Components {
		byName[c.Name] = c
	}
	out := make([]kubeTarget, 0, len(ms))
	for _, mp := range ms {
		kt := kubeTarget{comp: byName[mp.Component], target: driver.Target{
			URL: kubedriver.URL(ns), Options: maps.Clone(mp.Options), State: m.State, Digest: digest}}
		for _, w := range mp.Quiesce {
			qw, err := discovery.ParseWorkload(w)
			if err != nil {
				return nil, fmt.Errorf("component %q: quiesce %q: %w", mp.Component, w, err)
			}
			kt.quiesce = append(kt.quiesce, qw)
		}
		out = append(out, kt)
	}
	return out, nil
}

// planKube plans every `kubernetes` component (read-only API calls).
func planKube(ctx context.Context, d *kubedriver.Driver, kts []kubeTarget) ([]driver.ComponentPlan, error) {
	plans := make([]driver.ComponentPlan, len(kts))
	for i, kt := range kts {
		p, err := d.Plan(ctx, kt.comp, kt.target)
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", kt.comp.Name, err)
		}
		plans[i] = p
	}
	return plans, nil
}

// restoreKube restores one `kubernetes` component from the platform (every
// chunk verified before an object is written).
func restoreKube(ctx context.Context, o Options, d *kubedriver.Driver, kt kubeTarget) (records.Component, error) {
	rc := records.Component{Name: kt.comp.Name, Kind: string(kt.comp.Kind)}
	start := time.Now()
	src := driver.StoreSource{Store: o.Platform.Chunks(o.Ref.Project, o.Ref.State), Component: kt.comp}
	res, err := d.Restore(ctx, kt.comp, src, kt.target, nil)
	rc.Duration = time.Since(start)
	rc.Action, rc.Strategy, rc.Bytes = string(res.Action), res.Strategy, res.Bytes
	if err != nil {
		rc.Error = err.Error()
		return rc, fmt.Errorf("component %s: %w", kt.comp.Name, err)
	}
	return rc, nil
}

// captureKube captures the `kubernetes` components of a capture in this
// process, uploading their chunks with the caller's client.
func captureKube(ctx context.Context, o CaptureOptions, ms []discovery.Mapping) ([]statepkg.Component, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	srcs := make([]capture.Source, 0, len(ms))
	for _, mp := range ms {
		opts := maps.Clone(mp.Options)
		if opts == nil {
			opts = map[string]string{}
		}
		if mp.Selector != "" {
			opts["selector"] = mp.Selector
		}
		srcs = append(srcs, capture.Source{Name: mp.Component, Kind: statepkg.KindKubernetes, URL: kubedriver.URL(o.Namespace), Options: opts})
	}
	m, _, err := capture.Capture(ctx, srcs, o.Platform.Chunks(o.Project, o.State), capture.Spec{State: o.Project + "/" + o.State,
		Registry: driver.NewRegistry(kubedriver.New(o.Client, nil))})
	if err != nil {
		return nil, err
	}
	return m.Components, nil
}
