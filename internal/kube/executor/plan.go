package executor

// One request, one plan, one apply. Every front end (Terraform's
// unikube_state_apply, `helm state apply`) builds a Request, shows the Plan
// that PlanApply works out, and hands that plan to ApplyPlan: the
// component mapping, the strategy rule and the comparison with the
// namespace's records live here once.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	kubedriver "github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// InstanceLabel selects a Helm release's workloads: every chart following
// the Kubernetes recommended labels sets it to the release name.
const InstanceLabel = "app.kubernetes.io/instance"

// Request is one in-cluster apply as a front end asks for it. Options say
// where and how (cluster, platform, namespace, reference, the records'
// release name, quiesce, hooks, substitutions, agent image, force);
// Options.Mappings is not read: PlanApply maps every component from the
// fields below.
type Request struct {
	Options
	// HelmRelease places components without an explicit mapping among the
	// release's workloads, read from Helm's release storage; without a
	// release record, by the label app.kubernetes.io/instance=<release>.
	HelmRelease string
	// Selector places components without an explicit mapping instead
	// (default with HelmRelease: its instance label).
	Selector string
	// Explicit mappings, one per component at most. One that names no
	// workload (no Workload, no Selector) only adds its settings (options,
	// PVC, quiesce, container, ...) to the default placement.
	Explicit []discovery.Mapping
	// Strategy ("swap", "in-place") goes to every component as the option
	// "strategy" unless its own options set one; drivers with a single way
	// to swap data in (volume, redis, mysql) keep theirs.
	Strategy string
	// Components limits the apply to these components; the others are
	// neither restored nor quiesced (empty: every component).
	Components []string
	// Tune, when set, adjusts the mappings once they are made (e.g. a front
	// end's per-component options or agent resources); its error stops
	// the plan.
	Tune func([]discovery.Mapping) error
	// PreScripts run before anything is restored, PostScripts after the
	// apply succeeded (see around.go); the hooks are Options.PreHooks and
	// Options.PostHooks.
	PreScripts, PostScripts []Script
}

// PlanItem says what an apply does to one component.
type PlanItem struct {
	Component string `json:"component"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	// Action is "replace" or "skip" (the records or, for kubernetes
	// components, the objects themselves say it already holds this
	// version). Agents check their target's marker again before they
	// change anything.
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	Strategy string `json:"strategy"`
	Atomic   bool   `json:"atomic"`
	Bytes    int64  `json:"bytes"`
	Files    int64  `json:"files"`
	// Changed names what changed in the target since the apply its marker
	// records (tables, files; a few at most) when Reason starts with
	// "changed since apply".
	Changed []string `json:"changed,omitempty"`
	// Warnings are the driver's (versions, a lost change signal, ...).
	Warnings []string `json:"warnings,omitempty"`
	// unrecorded: skipped because the target's marker holds the version,
	// although no record says so (e.g. the record Secret was deleted).
	unrecorded bool
}

// Plan is what an apply will do, per component. ApplyPlan executes
// exactly this: the same digest, mappings, subset and force.
type Plan struct {
	State      string     `json:"state"` // project/name
	Tag        string     `json:"tag,omitempty"`
	Digest     string     `json:"digest"`
	Release    string     `json:"release"`
	Namespace  string     `json:"namespace"`
	Quiesce    bool       `json:"quiesce"`
	Force      bool       `json:"force,omitempty"`
	Components []PlanItem `json:"components"`
	// Record is the newest record revision of the release when planned
	// (0: none); an apply refuses to start when another was written since.
	Record int `json:"record,omitempty"`
	// Last is that record.
	Last *records.Record `json:"-"`
	// Hooks, Scripts and Substitutions are what runs around the restore
	// and how the kubernetes components' values are rewritten.
	Hooks         []PlanHook         `json:"hooks,omitempty"`
	Scripts       []PlanScript       `json:"scripts,omitempty"`
	Substitutions []PlanSubstitution `json:"substitutions,omitempty"`

	req      Request
	agents   map[string]agentPlan // nil: no plan-only agents ran
	version  client.Version
	manifest *statepkg.Manifest
	mappings []discovery.Mapping
}

// UpToDate says whether the plan changes nothing: every component is
// skipped, and the records say so too (else an apply writes the record
// the namespace lacks, restoring nothing).
func (p *Plan) UpToDate() bool {
	for _, it := range p.Components {
		if it.Action != string(driver.ActionSkip) || it.unrecorded {
			return false
		}
	}
	return true
}

// Manifest is the manifest of the planned version.
func (p *Plan) Manifest() *statepkg.Manifest { return p.manifest }

// UnmappedError says components have no placement: no explicit mapping,
// and neither a Helm release nor a selector to find them by.
type UnmappedError struct{ Components []string }

func (e *UnmappedError) Error() string {
	return fmt.Sprintf("components %s have no mapping", strings.Join(e.Components, ", "))
}

// UnknownComponentError says a mapping or the component subset names a
// component the version does not have.
type UnknownComponentError struct {
	Component string
	Have      []string
}

func (e *UnknownComponentError) Error() string {
	return fmt.Sprintf("the version has no component %q (it has %s)", e.Component, strings.Join(e.Have, ", "))
}

// DuplicateMappingError says two explicit mappings name one component.
type DuplicateMappingError struct{ Component string }

func (e *DuplicateMappingError) Error() string {
	return fmt.Sprintf("component %q has more than one mapping; each component lives in one workload", e.Component)
}

// StalePlanError says the namespace's records changed between the plan
// and the apply.
type StalePlanError struct{ Planned, Now int }

func (e *StalePlanError) Error() string {
	return fmt.Sprintf("another apply was recorded since the plan (record revision %d, planned against %d); plan again (nothing was changed)", e.Now, e.Planned)
}

// PlanApply resolves req's reference once, maps every component of the
// version once, plans the kubernetes components in this process, compares
// the others with the namespace's records and, unless
// Options.SkipPreflight, asks their targets: one plan-only agent Job per
// component, all at once (plan_agents.go).
func PlanApply(ctx context.Context, req Request) (*Plan, error) {
	o := req.Options
	if err := CheckRights(ctx, o, "plan"); err != nil {
		return nil, err
	}
	if err := validateRules(o.Substitutions); err != nil {
		return nil, fmt.Errorf("plan %s (nothing was changed): %w", o.Ref.StateName(), err)
	}
	if req.HelmRelease != "" && req.Selector == "" {
		req.Selector = InstanceLabel + "=" + req.HelmRelease
	}
	v, err := o.Platform.Resolve(ctx, o.Ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", o.Ref.String(), err)
	}
	m, digest, err := o.Platform.GetManifest(ctx, o.Ref.Project, o.Ref.State, v.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s@%s: %w", o.Ref.StateName(), v.Digest, err)
	}
	v.Digest = digest
	rs, err := records.List(ctx, o.Client, o.Namespace, o.Release)
	if err != nil {
		return nil, err
	}
	var rel *discovery.Release
	if req.HelmRelease != "" && needsRelease(req, m) {
		rel, err = discovery.LoadRelease(ctx, o.Client, o.Namespace, req.HelmRelease)
		if errors.Is(err, discovery.ErrReleaseNotFound) {
			rel, err = nil, nil // objects installed otherwise: the instance label finds them
		}
		if err != nil {
			return nil, fmt.Errorf("helm release %s: %w", req.HelmRelease, err)
		}
		if rel != nil {
			rs = records.MarkUninstalled(rs, rel.Installed)
		}
	}
	ms, err := MapComponents(m, req, rel)
	if err != nil {
		return nil, err
	}
	if req.Tune != nil {
		if err := req.Tune(ms); err != nil {
			return nil, err
		}
	}
	p := &Plan{State: o.Ref.StateName(), Tag: v.Tag, Digest: digest, Release: o.Release, Namespace: o.Namespace,
		Quiesce: o.Quiesce, Force: o.Force, req: req, version: v, manifest: m, mappings: ms}
	if len(rs) > 0 {
		p.Last = &rs[len(rs)-1]
		p.Record = p.Last.Revision
	}

	var agentMs, kubeMs []discovery.Mapping
	for _, mp := range ms {
		switch {
		case mp.Kind == statepkg.KindKubernetes:
			kubeMs = append(kubeMs, mp)
		case mp.Kind != statepkg.KindScript:
			agentMs = append(agentMs, mp)
		}
	}
	targets, err := discovery.Resolve(ctx, o.Client, o.Namespace, agentMs)
	if err != nil {
		return nil, err
	}
	where := map[string]string{}
	for _, t := range targets {
		where[t.Component] = t.Workload.String()
		if t.PVC != "" {
			where[t.Component] = "pvc/" + t.PVC + " (" + t.Workload.String() + ")"
		}
	}
	kubeTs, err := kubeTargets(m, digest, o.Namespace, kubeMs)
	if err != nil {
		return nil, err
	}
	for i := range kubeTs {
		kubeTs[i].target.Force = o.Force
	}
	kubePlans, err := planKube(ctx, kubedriver.New(o.Client, o.Substitutions), kubeTs)
	if err != nil {
		return nil, fmt.Errorf("plan of %s@%s in %s (nothing was changed): %w", o.Ref.StateName(), v.Tag, o.Namespace, err)
	}
	kubePlan := map[string]driver.ComponentPlan{}
	for i, kt := range kubeTs {
		kubePlan[kt.comp.Name] = kubePlans[i]
	}
	if !o.SkipPreflight && len(targets) > 0 {
		if p.agents, err = planAgents(ctx, o, targets, digest); err != nil {
			return nil, fmt.Errorf("plan of %s@%s in %s (nothing was changed): %w", o.Ref.StateName(), v.Tag, o.Namespace, err)
		}
	}
	p.Components = planItems(p, m, ms, records.Holding(rs), where, kubePlan)
	if err := planAround(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// needsRelease says whether some component is placed by the Helm
// release's record (it has no explicit workload and needs one).
func needsRelease(req Request, m *statepkg.Manifest) bool {
	for _, c := range m.Components {
		if inProcess(c.Kind) || !inSubset(req.Components, c.Name) {
			continue
		}
		i := slices.IndexFunc(req.Explicit, func(e discovery.Mapping) bool { return e.Component == c.Name })
		if i < 0 || (req.Explicit[i].Workload == "" && req.Explicit[i].Selector == "") {
			return true
		}
	}
	return false
}

// planItems says per mapped component what the apply does and why.
func planItems(p *Plan, m *statepkg.Manifest, ms []discovery.Mapping, holding map[string]*records.Record,
	where map[string]string, kubePlan map[string]driver.ComponentPlan) []PlanItem {
	out := make([]PlanItem, 0, len(ms))
	for _, mp := range ms {
		c := m.Components[slices.IndexFunc(m.Components, func(c statepkg.Component) bool { return c.Name == mp.Component })]
		it := PlanItem{Component: c.Name, Kind: string(c.Kind), Bytes: c.Size, Files: int64(len(c.Files)),
			Target: p.Namespace + "/" + where[c.Name], Strategy: StrategyOf(c.Kind, mp.Options["strategy"])}
		it.Atomic = it.Strategy != "in-place" && it.Strategy != "staging-rename" && it.Strategy != "script"
		it.Action, it.Reason = recordAction(p, holding[c.Name])
		switch c.Kind {
		case statepkg.KindKubernetes:
			it.Target = p.Namespace + "/ConfigMaps,Secrets"
			if kp, ok := kubePlan[c.Name]; ok {
				// The objects themselves say what they hold.
				it.Action, it.Reason = string(kp.Action), kp.Reason
				if kp.Action == driver.ActionCreate || kp.Action == driver.ActionIncremental {
					it.Action = string(driver.ActionReplace)
				}
			}
		case statepkg.KindScript:
			// A script has no marker of its own: the records say whether
			// it ran with this version.
			it.Target = p.Namespace + "/Job"
		default:
			if ap, ok := p.agents[c.Name]; ok {
				agentItem(&it, ap, it.Action)
			}
		}
		out = append(out, it)
	}
	return out
}

// recordAction compares a component with the newest record it went
// through.
func recordAction(p *Plan, held *records.Record) (string, string) {
	replace := string(driver.ActionReplace)
	switch {
	case p.Force && held != nil && held.Digest == p.Digest:
		return replace, fmt.Sprintf("forced: re-applied although record revision %d says it holds this version", held.Revision)
	case p.Force:
		return replace, "forced"
	case held != nil && held.Digest == p.Digest:
		return string(driver.ActionSkip), fmt.Sprintf("record revision %d already holds this version", held.Revision)
	case held != nil:
		return replace, fmt.Sprintf("record revision %d holds %s (%s)", held.Revision, shortDigest(held.Digest), dash(held.Tag))
	case p.Last == nil:
		return replace, fmt.Sprintf("no apply of release %q is recorded in %s", p.Release, p.Namespace)
	case p.Last.Status == records.StatusFailed:
		return replace, fmt.Sprintf("the last apply (record revision %d, %s) failed: %s", p.Last.Revision, shortDigest(p.Last.Digest), firstLine(p.Last.Error))
	default:
		return replace, fmt.Sprintf("no record of release %q in %s says what it holds", p.Release, p.Namespace)
	}
}

// ApplyPlan executes p: the planned digest, mappings, subset and force,
// after checking that no other apply was recorded since the plan.
func ApplyPlan(ctx context.Context, p *Plan) (*records.Record, error) {
	o := p.req.Options
	last, err := records.Last(ctx, o.Client, o.Namespace, o.Release, "")
	if err != nil {
		return nil, err
	}
	if now := revisionOf(last); now != p.Record {
		re := &RefusedError{Err: fmt.Errorf("apply %s@%s to %s: %w", p.State, dash(p.Tag), o.Namespace, &StalePlanError{Planned: p.Record, Now: now})}
		re.Record = failedRecord(ctx, o, progress{digest: p.Digest, tag: p.Tag}, re)
		return re.Record, re
	}
	if err := p.failedError(); err != nil {
		// The plan's agents found a target unusable: a refusal, recorded
		// as failed with its reason, like a refusal found at apply time.
		re := &RefusedError{Err: fmt.Errorf("preflight of %s@%s in %s (%s): %w", p.State, dash(p.Tag), o.Namespace, Unchanged, err)}
		re.Record = failedRecord(ctx, o, progress{digest: p.Digest, tag: p.Tag}, re)
		return re.Record, re
	}
	o.Ref = statepkg.Ref{Project: o.Ref.Project, State: o.Ref.State, Digest: p.Digest}
	o.Mappings = slices.Clone(p.mappings)
	o.planned = p
	return applyAround(ctx, p, o)
}

// MarkRollback says the apply of p rolls back to record revision of: its
// record says so (records.Record.RollbackOf).
func (p *Plan) MarkRollback(of int) { p.req.RollbackOf = of }

func revisionOf(r *records.Record) int {
	if r == nil {
		return 0
	}
	return r.Revision
}

// MapComponents places every component of m (of req.Components when set)
// once: explicit mappings first, then the Helm release's record (rel, when
// loaded), then req.Selector. It is pure: rel is what LoadRelease read.
func MapComponents(m *statepkg.Manifest, req Request, rel *discovery.Release) ([]discovery.Mapping, error) {
	have := make([]string, 0, len(m.Components))
	for _, c := range m.Components {
		have = append(have, c.Name)
	}
	explicit := map[string]discovery.Mapping{}
	for _, e := range req.Explicit {
		if !slices.Contains(have, e.Component) {
			return nil, &UnknownComponentError{Component: e.Component, Have: have}
		}
		if _, dup := explicit[e.Component]; dup {
			return nil, &DuplicateMappingError{Component: e.Component}
		}
		explicit[e.Component] = e
	}
	for _, name := range req.Components {
		if !slices.Contains(have, name) {
			return nil, &UnknownComponentError{Component: name, Have: have}
		}
	}
	var out []discovery.Mapping
	var unmapped []string
	var fromRelease []discovery.Component
	pvcOf := map[string]string{}
	for _, c := range m.Components {
		if !inSubset(req.Components, c.Name) {
			continue
		}
		dm := explicit[c.Name]
		dm.Component, dm.Kind = c.Name, c.Kind
		if dm.Options != nil {
			dm.Options = maps.Clone(dm.Options)
		}
		switch {
		case inProcess(c.Kind):
			// ConfigMaps and Secrets of the namespace, or a script Job:
			// no workload to find (a script may still name a PVC).
			dm.Workload, dm.Selector = "", ""
		case dm.Workload != "" || dm.Selector != "":
		case rel != nil:
			fromRelease = append(fromRelease, discovery.Component{Name: c.Name, Kind: c.Kind})
			if dm.PVC != "" {
				pvcOf[c.Name] = "pvc/" + dm.PVC
			}
		case req.Selector != "":
			dm.Selector = req.Selector
		default:
			unmapped = append(unmapped, c.Name)
			continue
		}
		if req.Strategy != "" && !inProcess(c.Kind) {
			if dm.Options == nil {
				dm.Options = map[string]string{}
			}
			if _, set := dm.Options["strategy"]; !set {
				dm.Options["strategy"] = req.Strategy
			}
		}
		out = append(out, dm)
	}
	if len(unmapped) > 0 {
		return nil, &UnmappedError{Components: unmapped}
	}
	if len(fromRelease) == 0 {
		return out, nil
	}
	found, err := rel.Map(fromRelease, pvcOf)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		i := slices.IndexFunc(out, func(d discovery.Mapping) bool { return d.Component == f.Component })
		out[i].Workload = f.Workload
		if out[i].PVC == "" {
			out[i].PVC = f.PVC
		}
	}
	return out, nil
}

func inSubset(subset []string, name string) bool {
	return len(subset) == 0 || slices.Contains(subset, name)
}

// inProcess says whether the executor handles a kind without finding a
// workload: kubernetes objects (API calls) and script components (a Job).
func inProcess(k statepkg.Kind) bool {
	return k == statepkg.KindKubernetes || k == statepkg.KindScript
}

// StrategyOf is how a component's data is swapped in, as far as a plan
// knows: the drivers with one way say theirs, postgres takes the
// requested strategy.
func StrategyOf(k statepkg.Kind, requested string) string {
	switch k {
	case statepkg.KindVolume:
		return "staging-rename"
	case statepkg.KindRedis:
		return "swapdb"
	case statepkg.KindMySQL:
		return "rename-tables"
	case statepkg.KindKubernetes:
		return "update"
	case statepkg.KindScript:
		return "script"
	case statepkg.KindOpenSearch:
		return "alias-swap"
	}
	if requested != "" {
		return requested
	}
	return "swap"
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
