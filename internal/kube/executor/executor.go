// Package executor applies a version of a named state to a namespace: it
// checks the caller's rights, maps components to their targets, mints one
// scoped job token, quiesces the workloads using the data, runs one agent
// Job per component (bounded in parallel) next to the data, scales the
// workloads back, and writes a record Secret saying what happened.
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	kubedriver "github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// LabelMode on agent Jobs says what they do: plan, restore or capture.
const (
	LabelMode   = "unikube.dev/mode"
	ModePlan    = "plan"
	ModeRestore = "restore"
	ModeCapture = "capture"
)

// DefaultAgentRepository is where the project publishes the agent image.
const DefaultAgentRepository = jobs.DefaultAgentRepository

// DefaultAgentImage is the agent image Jobs use unless told otherwise: the
// published image of this binary's own version,
// ghcr.io/unikubehq/unikube-agent:<version>. A development build gets
// ":dev", which is not published: it must be told its agent image (built
// from the same checkout, as a development build too).
func DefaultAgentImage() string { return jobs.AgentImageFor(buildinfo.Get().Version) }

// Options of one apply.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Platform is the caller's platform client: it resolves the reference
	// and mints the job token; its own token never enters the cluster.
	Platform *client.Client
	// PlatformURL is the platform as pods reach it (default: the client's).
	PlatformURL string
	// Ref is the version to apply (project/state:tag or @sha256:...).
	Ref      statepkg.Ref
	Release  string // names the record Secrets
	Mappings []discovery.Mapping
	// Quiesce stops the workloads using each component while it is
	// replaced.
	Quiesce    bool
	AgentImage string
	// CABundle is PEM: the CA certificates the agents verify the
	// platform's certificate with, besides the system's (a private CA).
	// The apply puts it in a ConfigMap named after its content in the
	// namespace and mounts it into every agent Job. Default: the bundle
	// Platform trusts (client.Config.CACertificate).
	CABundle []byte
	// CAConfigMap names an existing ConfigMap in the namespace whose key
	// ca.crt holds the bundle instead (e.g. one a trust manager keeps);
	// it wins over CABundle.
	CAConfigMap string
	// ClientVersion is the version the agent must report (default: this
	// binary's, internal/buildinfo); a Job whose agent reports another
	// fails with a *jobs.VersionMismatchError before anything is changed.
	ClientVersion string
	// Concurrency is how many agent Jobs run at once (default 2).
	Concurrency int
	Actor       string
	// DeleteFailedJobs removes failed Jobs (default: kept for inspection).
	DeleteFailedJobs bool
	// SkipRBACCheck skips the SelfSubjectAccessReview pre-check.
	SkipRBACCheck bool
	// RESTConfig is needed for hooks (exec).
	RESTConfig *rest.Config
	// PreHooks run after the preflight and before anything is quiesced;
	// PostHooks after the workloads are back (only when the restore
	// succeeded).
	PreHooks, PostHooks []hooks.Hook
	// SkipPreflight skips the plan Jobs that check every target (reachable,
	// credentials, versions, changed since apply) before anything is
	// quiesced or changed: at plan time (PlanApply) and at apply time.
	// The records alone then say what a target holds.
	SkipPreflight bool
	// Substitutions rewrite values of the ConfigMaps/Secrets of
	// `kubernetes` components as they are restored (cloning a state into
	// another namespace: db.staging.svc → db.dev-alice.svc).
	Substitutions  []substitution.Rule
	Timeout        time.Duration // per Job; default 1h
	QuiesceOptions quiesce.Options
	Logger         *slog.Logger
	// RollbackOf, when an apply rolls back, is the record revision whose
	// version it re-applies: the record says "rollback to revision N".
	RollbackOf int
	// Force re-applies components whose target already holds the version
	// (its marker says so): resetting data changed by hand.
	Force bool
	// planned is the plan ApplyPlan executes: its version and manifest are
	// used instead of resolving the reference again.
	planned *Plan
	// OnProgress receives the agent's progress lines of each restore Job
	// (about every 2 s; optional), e.g. for progress bars.
	OnProgress func(component string, line agentproto.Line)
}

// Apply applies o.Ref to o.Namespace and returns the record it wrote.
// The record is written (status failed) also when the apply fails: after
// it started changing things with the components' outcomes; before, as a
// *RefusedError whose Record says why ("nothing was changed").
func Apply(ctx context.Context, o Options) (*records.Record, error) {
	var at progress
	rec, err := apply(ctx, o, &at)
	if err == nil {
		return rec, nil
	}
	if rec != nil {
		if !at.quiesced && unchanged(rec) {
			err = &RefusedError{Err: err, Record: rec}
		}
		return rec, err
	}
	var re *RefusedError
	if !at.changing && !errors.As(err, &re) {
		re = &RefusedError{Err: err}
		err = re
	}
	rec = failedRecord(ctx, o, at, err)
	if re != nil {
		re.Record = rec
	}
	return rec, err
}

// agentDefaults fills in the agent image and client version the caller left
// out, and returns its logger (one that discards when it gave none).
func agentDefaults(log *slog.Logger, image, version *string) *slog.Logger {
	if *image == "" {
		*image = DefaultAgentImage()
	}
	if *version == "" {
		*version = buildinfo.Get().Version
	}
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func apply(ctx context.Context, o Options, at *progress) (*records.Record, error) {
	log := agentDefaults(o.Logger, &o.AgentImage, &o.ClientVersion)
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.PlatformURL == "" {
		o.PlatformURL = o.Platform.Endpoint()
	}
	cs, ns := o.Client, o.Namespace
	// Where the time goes, step by step (info log): the fixed costs of an
	// apply are easy to miss next to the data transfer.
	mark := time.Now()
	lap := func(step string, args ...any) {
		log.Info("apply step", append([]any{"step", step, "took", time.Since(mark).Round(time.Millisecond)}, args...)...)
		mark = time.Now()
	}
	if err := validateRules(o.Substitutions); err != nil {
		return nil, fmt.Errorf("apply %s (nothing was changed): %w", o.Ref.StateName(), err)
	}
	if err := CheckRights(ctx, o, "apply"); err != nil {
		return nil, err
	}
	lap("access check")
	v, m, digest, err := resolveOnce(ctx, o)
	if err != nil {
		return nil, err
	}
	at.digest, at.tag = digest, v.Tag
	kinds := map[string]statepkg.Kind{}
	for _, c := range m.Components {
		kinds[c.Name] = c.Kind
	}
	ms := slices.Clone(o.Mappings)
	for i := range ms {
		k, ok := kinds[ms[i].Component]
		if !ok {
			return nil, fmt.Errorf("mapping names component %q, which %s@%s does not have", ms[i].Component, o.Ref.StateName(), v.Tag)
		}
		ms[i].Kind = k
	}
	kubeMs, ms := splitKube(ms)
	scriptTs, ms, err := scriptTargets(ctx, o, m, ms) // kind "script": see script_component.go
	if err != nil {
		return nil, err
	}
	kubeTs, err := kubeTargets(m, digest, ns, kubeMs)
	if err != nil {
		return nil, err
	}
	for i := range kubeTs {
		kubeTs[i].target.Force = o.Force
	}
	kd := kubedriver.New(cs, o.Substitutions)
	lap("resolve and manifest")
	targets, err := discovery.Resolve(ctx, cs, ns, ms)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(targets); err != nil {
		return nil, err
	}
	lap("discovery")
	jt, err := o.Platform.CreateJobToken(ctx, o.Ref.Project, o.Ref.State, digest, o.Timeout+time.Hour)
	if err != nil {
		return nil, fmt.Errorf("mint a job token for %s@%s: %w", o.Ref.StateName(), v.Tag, err)
	}

	lap("job token")
	if o.CAConfigMap, err = caConfigMap(ctx, cs, ns, o.CAConfigMap, o.CABundle, o.Platform); err != nil {
		return nil, fmt.Errorf("apply %s (nothing was changed): %w", o.Ref.StateName(), err)
	}
	rec := &records.Record{Release: o.Release, State: o.Ref.StateName(), Digest: digest, Tag: v.Tag, Actor: o.Actor, Time: time.Now().UTC(),
		RollbackOf: o.RollbackOf}
	start := time.Now()
	var skipped []records.Component
	if todo, held, ok := plannedTargets(o, targets); ok {
		// The plan's agents checked every target moments ago.
		for _, name := range held {
			skipped = append(skipped, records.Component{Name: name, Kind: string(kinds[name]), Action: string(driver.ActionSkip)})
		}
		targets = todo
	} else if needPreflight(o) {
		plans, err := preflight(ctx, o, targets, digest, jt.Token, log)
		if err != nil {
			return nil, fmt.Errorf("preflight of %s@%s in %s (nothing was changed): %w", o.Ref.StateName(), v.Tag, ns, err)
		}
		// Components already holding this version need neither a quiesce
		// nor a restore.
		var todo []discovery.Target
		for i, t := range targets {
			if plans[i].Action == driver.ActionSkip {
				skipped = append(skipped, records.Component{Name: t.Component, Kind: string(t.Kind), Action: string(driver.ActionSkip)})
				continue
			}
			todo = append(todo, t)
		}
		targets = todo
		lap("preflight jobs")
	}
	// kubernetes components are planned in this process, always: the plan
	// also checks the substitution rules and the objects' current digests.
	kubePlans, err := planKube(ctx, kd, kubeTs)
	if err != nil {
		return nil, fmt.Errorf("preflight of %s@%s in %s (nothing was changed): %w", o.Ref.StateName(), v.Tag, ns, err)
	}
	var kubeTodo []kubeTarget
	for i, kt := range kubeTs {
		if kubePlans[i].Action == driver.ActionSkip {
			skipped = append(skipped, records.Component{Name: kt.comp.Name, Kind: string(kt.comp.Kind), Action: string(driver.ActionSkip)})
			continue
		}
		kubeTodo = append(kubeTodo, kt)
	}
	lap("plan kubernetes components")
	if err := runHooks(ctx, o, o.PreHooks); err != nil {
		return nil, fmt.Errorf("pre hooks (nothing was changed): %w", err)
	}
	if len(o.PreHooks) > 0 {
		lap("pre hooks")
	}
	at.changing = true // from here on a failure leaves its own record
	var quiesced []quiesce.Workload
	if o.Quiesce {
		for _, t := range targets {
			for _, w := range t.Quiesce {
				if !slices.Contains(quiesced, w) {
					quiesced = append(quiesced, w)
				}
			}
		}
		for _, kt := range kubeTodo {
			for _, w := range kt.quiesce {
				if !slices.Contains(quiesced, w) {
					quiesced = append(quiesced, w)
				}
			}
		}
		log.Info("quiescing", "workloads", quiesced)
		at.quiesced = true
		if err := quiesce.Down(ctx, cs, ns, quiesced, o.QuiesceOptions); err != nil {
			// Bring back whatever was already scaled down.
			uerr := quiesce.Up(context.WithoutCancel(ctx), cs, ns, quiesced, o.QuiesceOptions)
			return nil, errors.Join(fmt.Errorf("quiesce: %w", err), uerr)
		}
		lap("quiesce")
	}

	rec.Components = make([]records.Component, len(targets)+len(kubeTodo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for i, t := range targets {
		g.Go(func() error {
			c, _, err := runOne(gctx, o, t, digest, jt.Token, false, log)
			rec.Components[i] = c
			return err
		})
	}
	for i, kt := range kubeTodo {
		g.Go(func() error {
			c, err := restoreKube(gctx, o, kd, kt)
			rec.Components[len(targets)+i] = c
			return err
		})
	}
	applyErr := g.Wait()
	lap("restore jobs")
	applyErr = restoreScripts(ctx, o, digest, jt.Token, scriptTs, rec, applyErr, log)
	if len(scriptTs) > 0 {
		lap("scripts")
	}
	rec.Components = append(rec.Components, skipped...)

	if o.Quiesce {
		// Scale back also after a failure: the previous data is in place.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		if err := quiesce.Up(uctx, cs, ns, quiesced, o.QuiesceOptions); err != nil {
			applyErr = errors.Join(applyErr, fmt.Errorf("scale workloads back (run recover to retry): %w", err))
		}
		lap("scale back")
	}
	if applyErr == nil {
		if err := runHooks(ctx, o, o.PostHooks); err != nil {
			applyErr = fmt.Errorf("post hooks (the data was restored): %w", err)
		}
	}
	rec.Duration = time.Since(start)
	rec.Status = records.StatusApplied
	if applyErr != nil {
		rec.Status, rec.Error = records.StatusFailed, applyErr.Error()
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := records.Write(wctx, cs, ns, rec); err != nil {
		applyErr = errors.Join(applyErr, err)
	}
	lap("record", "total", time.Since(start).Round(time.Millisecond))
	if applyErr != nil {
		return rec, fmt.Errorf("apply %s@%s to %s: %w", o.Ref.StateName(), v.Tag, ns, applyErr)
	}
	return rec, nil
}

// resolveOnce is the version, manifest and digest of an apply: the
// plan's when it runs a plan, else o.Ref resolved now.
func resolveOnce(ctx context.Context, o Options) (client.Version, *statepkg.Manifest, string, error) {
	if p := o.planned; p != nil {
		return p.version, p.manifest, p.Digest, nil
	}
	v, err := o.Platform.Resolve(ctx, o.Ref)
	if err != nil {
		return v, nil, "", fmt.Errorf("resolve %s: %w", o.Ref.StateName(), err)
	}
	m, digest, err := o.Platform.GetManifest(ctx, o.Ref.Project, o.Ref.State, v.Digest)
	if err != nil {
		return v, nil, "", fmt.Errorf("manifest of %s@%s: %w", o.Ref.StateName(), v.Digest, err)
	}
	return v, m, digest, nil
}

// applyOperations are the operations an apply asks rights for: exec into
// the app's pods only when hooks run.
func applyOperations(o Options) []rbac.Operation {
	ops := []rbac.Operation{rbac.OpRestore}
	if len(o.PreHooks)+len(o.PostHooks) > 0 {
		ops = append(ops, rbac.OpHooks)
	}
	return ops
}

// needPreflight says whether plan-only Jobs must check every target before
// the restore Jobs start. The restore Job plans too (the same checks:
// reachable, credentials, versions, already applied) before it changes
// anything, so a separate pod per component (one more pod start, often
// the largest fixed cost of an apply) only pays off when something happens
// between the plan and the restore that a failed check must prevent: pre
// hooks, or quiescing the workloads.
func needPreflight(o Options) bool {
	return !o.SkipPreflight && (o.Quiesce || len(o.PreHooks) > 0)
}

func runHooks(ctx context.Context, o Options, hs []hooks.Hook) error {
	if len(hs) > 0 && o.RESTConfig == nil {
		return errors.New("hooks need Options.RESTConfig")
	}
	for _, h := range hs {
		if _, err := hooks.Run(ctx, o.RESTConfig, o.Client, o.Namespace, h); err != nil {
			return err
		}
	}
	return nil
}

// preflight runs a plan-only agent Job per target, in parallel, and
// returns their plans in target order.
func preflight(ctx context.Context, o Options, targets []discovery.Target, digest, token string, log *slog.Logger) ([]driver.ComponentPlan, error) {
	plans := make([]driver.ComponentPlan, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for i, t := range targets {
		g.Go(func() error {
			_, res, err := runOne(gctx, o, t, digest, token, true, log)
			if err != nil {
				return err
			}
			if res.Last.Plan == nil {
				return fmt.Errorf("component %s: the agent's result line carries no plan", t.Component)
			}
			plans[i] = *res.Last.Plan
			log.Info("planned", "component", t.Component, "action", plans[i].Action, "reason", plans[i].Reason)
			return nil
		})
	}
	return plans, g.Wait()
}

// agentSpec is the Job of one component's agent (only its plan when
// planOnly: then the volume is mounted read-only, so a plan cannot change
// the data whatever the agent does).
func agentSpec(o Options, t discovery.Target, digest, token string, planOnly bool) jobs.Spec {
	args := agentproto.Restore{
		Common: agentproto.Common{Platform: o.PlatformURL, State: o.Ref.StateName(), Component: t.Component, Kind: t.Kind,
			Options: t.Options, Interval: agentproto.JobInterval},
		Version: digest, Target: t.URL, PlanOnly: planOnly, Force: o.Force,
	}.Args()
	mode := ModeRestore
	if planOnly {
		mode = ModePlan
	}
	return jobs.Spec{
		Namespace: ns(o), Component: t.Component, Image: t.Image, AgentImage: o.AgentImage, ClientVersion: o.ClientVersion, Args: args,
		Token: token, Password: t.Password, PasswordRef: t.PasswordRef, PVC: t.PVC, ReadOnlyData: planOnly, NodeName: t.Node, CAConfigMap: o.CAConfigMap,
		RunAsUser: t.RunAsUser, RunAsGroup: t.RunAsGroup, FSGroup: t.FSGroup, Fit: t.Fit, Resources: t.Resources, Deadline: o.Timeout,
		Labels: map[string]string{"unikube.dev/release": o.Release, LabelMode: mode},
	}
}

// runOne runs the agent Job of one component (only its plan when planOnly).
func runOne(ctx context.Context, o Options, t discovery.Target, digest, token string, planOnly bool, log *slog.Logger) (records.Component, jobs.Result, error) {
	rc := records.Component{Name: t.Component, Kind: string(t.Kind)}
	spec := agentSpec(o, t, digest, token, planOnly)
	start := time.Now()
	ro := jobs.RunOptions{DeleteOnFailure: o.DeleteFailedJobs, Logger: log}
	if o.OnProgress != nil && !planOnly {
		ro.OnLine = func(l agentproto.Line) { o.OnProgress(t.Component, l) }
	}
	res, err := jobs.Run(ctx, o.Client, spec, ro)
	rc.Duration = time.Since(start)
	if err != nil {
		err = phraseTargetError(t, o.PlatformURL, err)
		rc.Error = err.Error()
		var pe *jobs.PodError
		if errors.As(err, &pe) {
			rc.LogTail = pe.LogTail
			if pe.Unchanged() && !planOnly {
				rc.Unchanged = true
				// Without a preflight Job the restore Job's own plan is
				// the check: say that it stopped before changing anything.
				return rc, res, fmt.Errorf("component %s (its target was not changed): %w", t.Component, err)
			}
		}
		return rc, res, fmt.Errorf("component %s: %w", t.Component, err)
	}
	if cr := res.Last.Result; cr != nil {
		rc.Action, rc.Strategy, rc.Bytes = string(cr.Action), cr.Strategy, cr.Bytes
		rc.ChunksFetched, rc.FilesWritten = cr.ChunksFetched, cr.FilesWritten
	}
	return rc, res, nil
}

func ns(o Options) string { return o.Namespace }

// caConfigMap returns the ConfigMap the agent Jobs read their CA bundle
// from: the one the user named (checked: it exists and holds a
// certificate), else one made from bundle or, without one, from the
// bundle the caller's client trusts; "" when there is none (the system's
// roots only).
func caConfigMap(ctx context.Context, cs kubernetes.Interface, ns, named string, bundle []byte, pc *client.Client) (string, error) {
	if named != "" {
		return named, jobs.CheckCAConfigMap(ctx, cs, ns, named)
	}
	if len(bundle) == 0 && pc != nil {
		bundle = pc.CACertificate()
	}
	if len(bundle) == 0 {
		return "", nil
	}
	if err := jobs.ParsePEM(bundle); err != nil {
		return "", fmt.Errorf("CA bundle for the agents: %w", err)
	}
	return jobs.EnsureCABundle(ctx, cs, ns, bundle)
}

// checkOptions refuses driver options the components' drivers do not take
// here, before any Job runs or anything is quiesced.
func checkOptions(targets []discovery.Target) error {
	reg := restore.DefaultRegistry()
	for _, t := range targets {
		d, err := reg.Get(t.Kind)
		if err != nil {
			continue // the agent says so, with its own registry
		}
		if err := driver.CheckOptions(d, t.Options); err != nil {
			return fmt.Errorf("component %q: %w (nothing was changed)", t.Component, err)
		}
	}
	return nil
}
