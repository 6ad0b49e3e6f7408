package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// applyFlags are the flags of apply and rollback.
type applyFlags struct {
	quiesce       bool
	maps          []string
	substitutions []string
	options       []string
	resources     []string
	strategy      string
	timeout       time.Duration
	wait          bool
	dryRun        bool
	force         bool
	components    []string
	concurrency   int
	// Hooks, scripts and substitution rules: what unikube_state_apply's
	// hooks, pre_script/post_script and substitution blocks say.
	preHooks, postHooks     []string
	hooksFile               string
	preScripts, postScripts []string
	scriptsFile             string
	substitutionsFile       string
	rollbackOf              int // set by rollback, not a flag: the record says "rollback to revision N"
}

func (f *applyFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.quiesce, "quiesce", true, "scale the workloads using the data to zero while it is replaced (--quiesce=false to keep them up)")
	fl.StringArrayVar(&f.maps, "map", nil, "map a component to a workload or PVC: component=StatefulSet/NAME, component=Deployment/NAME, component=pvc/NAME (repeatable)")
	fl.StringArrayVar(&f.substitutions, "set-substitution", nil, "OLD=NEW: replace a value in the ConfigMaps/Secrets of kubernetes components (repeatable)")
	fl.StringArrayVar(&f.options, "option", nil, "component.key=value: a driver option for one component, e.g. db.jobs=4 or db.data_load=pg_restore (repeatable; see manual/drivers.md)")
	fl.StringArrayVar(&f.resources, "agent-resources", nil, agentResourcesUsage)
	fl.StringVar(&f.strategy, "strategy", "", "restore strategy of database components: swap (default, atomic) or in-place")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Minute, "time limit per component Job")
	fl.BoolVar(&f.wait, "wait", false, "after the apply, wait until the release's workloads are ready")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan, change nothing (-o json|yaml: the plan as data)")
	fl.BoolVar(&f.force, "force", false, "re-restore components even when they already hold the version (reset data changed by hand)")
	fl.StringArrayVar(&f.components, "component", nil, "apply only this component (repeatable); the others are neither restored nor quiesced")
	fl.IntVar(&f.concurrency, "concurrency", 2, "components restored at once")
	fl.StringArrayVar(&f.preHooks, "pre-hook", nil, "'SELECTOR: COMMAND': run COMMAND (with sh -c) in the running pods SELECTOR matches, after the preflight and before anything is quiesced (repeatable; container, timeout, on_error: --hooks FILE)")
	fl.StringArrayVar(&f.postHooks, "post-hook", nil, "'SELECTOR: COMMAND': as --pre-hook, after the workloads are back, when the restore succeeded (repeatable)")
	fl.StringVar(&f.hooksFile, "hooks", "", "YAML/JSON file of hooks, the schema of unikube_state_apply's hooks block ({pre: [{selector, container, command, timeout, on_error}], post: [...]}); run before the --pre-hook/--post-hook ones")
	fl.StringArrayVar(&f.preScripts, "pre-script", nil, "PROJECT/NAME: run this cluster script as a Job before anything is restored (repeatable; variables: --scripts FILE)")
	fl.StringArrayVar(&f.postScripts, "post-script", nil, "PROJECT/NAME: run this cluster script after the apply succeeded (repeatable)")
	fl.StringVar(&f.scriptsFile, "scripts", "", "YAML/JSON file of pre/post scripts with their variables ({pre: [{script, variables, variables_from_env, namespace, timeout}], post: [...]}); run before the --pre-script/--post-script ones")
	fl.StringVar(&f.substitutionsFile, "substitutions", "", "YAML/JSON file of substitution rules, the schema of unikube_state_apply's substitution blocks ([{kinds, names, selector, annotation, keys, env_var, old, new}]); applied before the --set-substitution ones")
	for _, name := range []string{"hooks", "scripts", "substitutions"} {
		_ = cmd.MarkFlagFilename(name, "yaml", "yml", "json")
	}
}

// around reads the hooks, scripts and substitution flags and files into
// the request (files first, then the flags, in order).
func (f *applyFlags) around(req *executor.Request, lookupEnv func(string) (string, bool)) error {
	if f.hooksFile != "" {
		data, err := readFlagFile("--hooks", f.hooksFile)
		if err != nil {
			return err
		}
		pre, post, err := executor.DecodeHooks(f.hooksFile, data)
		if err != nil {
			return usageErrorf("--hooks: %v", err)
		}
		req.PreHooks, req.PostHooks = append(req.PreHooks, pre...), append(req.PostHooks, post...)
	}
	for _, h := range []struct {
		flag, when string
		specs      []string
		to         *[]hooks.Hook
	}{{"--pre-hook", executor.Pre, f.preHooks, &req.PreHooks}, {"--post-hook", executor.Post, f.postHooks, &req.PostHooks}} {
		for _, spec := range h.specs {
			hk, err := executor.ParseHook(h.when, len(*h.to), spec)
			if err != nil {
				return usageErrorf("%s %v", h.flag, err)
			}
			*h.to = append(*h.to, hk)
		}
	}
	if f.scriptsFile != "" {
		data, err := readFlagFile("--scripts", f.scriptsFile)
		if err != nil {
			return err
		}
		pre, post, err := executor.DecodeScripts(f.scriptsFile, data, lookupEnv)
		if err != nil {
			return usageErrorf("--scripts: %v", err)
		}
		req.PreScripts, req.PostScripts = append(req.PreScripts, pre...), append(req.PostScripts, post...)
	}
	for _, ref := range f.preScripts {
		req.PreScripts = append(req.PreScripts, executor.Script{Script: ref})
	}
	for _, ref := range f.postScripts {
		req.PostScripts = append(req.PostScripts, executor.Script{Script: ref})
	}
	if f.substitutionsFile != "" {
		data, err := readFlagFile("--substitutions", f.substitutionsFile)
		if err != nil {
			return err
		}
		rules, err := executor.DecodeSubstitutions(f.substitutionsFile, data)
		if err != nil {
			return usageErrorf("--substitutions: %v", err)
		}
		req.Substitutions = append(rules, req.Substitutions...)
	}
	return nil
}

func readFlagFile(flag, name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usageErrorf("%s %s: %v", flag, name, err)
	}
	return data, nil
}

func (f *applyFlags) parse() ([]discovery.Mapping, []substitution.Rule, error) {
	var maps []discovery.Mapping
	for _, m := range f.maps {
		c, t, ok := strings.Cut(m, "=")
		if !ok || c == "" || t == "" {
			return nil, nil, usageErrorf("--map %q: want component=Kind/NAME (e.g. db=StatefulSet/shop-db, uploads=pvc/shop-uploads)", m)
		}
		dm := discovery.Mapping{Component: c}
		switch k, n, _ := strings.Cut(t, "/"); strings.ToLower(k) {
		case "pvc", "persistentvolumeclaim", "persistentvolumeclaims":
			if n == "" {
				return nil, nil, usageErrorf("--map %q: want component=pvc/NAME", m)
			}
			dm.PVC = n
		default:
			w, err := discovery.ParseWorkload(t)
			if err != nil {
				return nil, nil, usageErrorf("--map %q: want StatefulSet/NAME, Deployment/NAME or pvc/NAME: %v", m, err)
			}
			dm.Workload = w.String()
		}
		maps = append(maps, dm)
	}
	var rules []substitution.Rule
	for _, sub := range f.substitutions {
		o, n, ok := strings.Cut(sub, "=")
		if !ok || o == "" {
			return nil, nil, usageErrorf("--set-substitution %q: want OLD=NEW", sub)
		}
		rules = append(rules, substitution.Rule{Old: o, New: n})
	}
	switch f.strategy {
	case "", "swap", "in-place":
	default:
		return nil, nil, usageErrorf("--strategy %q: use swap or in-place", f.strategy)
	}
	if f.timeout <= 0 {
		return nil, nil, usageErrorf("--timeout must be positive")
	}
	return maps, rules, nil
}

func newApplyCmd(s *Settings) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply REF RELEASE",
		Short: "Restore a state version into the services of a Helm release",
		Long: `apply restores every component of a version into the release's services:
postgres/mysql/redis components into the StatefulSet or Deployment running that
database, volume components into the release's PVCs. Components that map to
nothing or to several workloads need --map component=Kind/NAME.

Each component is restored by an agent Job that runs where its workload may
run: it takes the workload pod's imagePullSecrets, nodeSelector, tolerations,
node affinity, priorityClassName and user/group ids (none where the namespace
assigns them, as OpenShift does), and cpu/memory requests and limits
(--agent-resources, or defaults a ResourceQuota demanding them admits).

It prints the plan (per component: target, action, reason; the same plan
Terraform's unikube_state_apply shows as restore_plan), then the progress of
each component, then a summary, and records the apply in a Secret (helm state
history). Components the records say already hold the version are skipped
(their agent checks the target's marker again); --force restores them anyway,
--component NAME limits the apply to some components.

Hooks, scripts and substitution rules say what unikube_state_apply's hooks,
pre_script/post_script and substitution blocks say, in files of the same
schema (YAML or JSON; unknown keys are errors). The order is: pre scripts,
preflight, pre hooks, quiesce, restore, scale back, post hooks, post scripts.
A failed pre script or pre hook changes nothing; on_error: continue lets a
hook fail without failing the apply. --dry-run (and -o json|yaml) shows them
all: hooks with the pods they run in now, scripts with the names of the
variables set (never their values), rules with their values hidden.

  --hooks FILE          pre:  [{selector, container, command: [...], timeout, on_error: fail|continue}]
                        post: [...]
  --pre-hook 'SELECTOR: COMMAND'   short form: COMMAND runs with sh -c in the
                        first container of each running pod SELECTOR matches
  --scripts FILE        pre:  [{script: PROJECT/NAME, variables: {NAME: value},
                                variables_from_env: {NAME: ENV_VAR}, namespace, timeout}]
                        post: [...]
  --pre-script PROJECT/NAME        short form: a script whose variables all
                        have defaults
  --substitutions FILE  [{kinds: [ConfigMap|Secret], names: [...], selector,
                          annotation: key[=value], keys: [...], env_var, old, new}]
                        (or {substitution: [...]}); rules apply in order to the
                        kubernetes components' values, before --set-substitution

Script variables never go on the command line: put them in the file (mode
0600, out of version control) or name an environment variable holding them
with variables_from_env.`,
		Example: `  helm state apply shop/seed my-shop
  helm state apply shop/seed:v2 my-shop --map uploads=pvc/my-shop-uploads --dry-run
  helm state apply shop/seed my-shop --agent-resources db=cpu=500m,memory=1Gi --agent-resources '*=memory=512Mi'
  helm state apply shop/seed my-shop --component db --force      # reset the database to the version
  helm state apply shop/seed my-shop --dry-run -o json            # the plan Terraform's restore_plan shows
  helm state apply shop/staging my-shop --substitutions clone.yaml --scripts anonymize.yaml \
    --pre-hook 'app=web: touch /tmp/maintenance' --post-hook 'app=cache: redis-cli FLUSHALL'`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			return runApply(s.Context(cmd), s, ref, a[1], &f)
		},
	}
	f.add(cmd)
	return cmd
}

func runApply(ctx context.Context, s *Settings, ref statepkg.Ref, releaseName string, f *applyFlags) error {
	maps, rules, err := f.parse()
	if err != nil {
		return err
	}
	if ref.Tag != "" {
		if e, err := statepkg.ParseTagExpr(ref.Tag); err == nil && e.IsWriteOnly() {
			return usageErrorf("%s selects no existing version (write-only tag expression): use a tag, @latest or @candidate", ref)
		}
	}
	pc, err := s.Platform()
	if err != nil {
		return err
	}
	cs, rc, err := s.Kube()
	if err != nil {
		return err
	}
	ns := s.Namespace()
	// Rights first: a caller who may not apply hears all it lacks, not
	// "secrets is forbidden" from reading the release.
	if err := executor.CheckRights(ctx, executor.Options{Client: cs, Namespace: ns, Ref: ref}, "apply"); err != nil {
		return err
	}
	rel, err := discovery.LoadRelease(ctx, cs, ns, releaseName)
	if err != nil {
		return err
	}
	actor := "helm-state"
	if who, err := pc.Whoami(ctx); err == nil {
		actor = who.Name
	}
	var prog Progress // made once the plan names the components
	req := executor.Request{
		Options: executor.Options{
			Client: cs, Namespace: ns, Platform: pc, PlatformURL: s.PlatformURL, Ref: ref,
			Release: releaseName, Quiesce: f.quiesce, AgentImage: s.AgentImage, Concurrency: f.concurrency,
			Actor: actor, RESTConfig: rc, Substitutions: rules, Timeout: f.timeout, Logger: s.Logger(),
			CAConfigMap: s.CAConfigMap, Force: f.force, RollbackOf: f.rollbackOf,
			OnProgress: func(c string, l agentproto.Line) { prog.Line(c, l) },
		},
		HelmRelease: releaseName, Explicit: maps, Strategy: f.strategy, Components: f.components,
		Tune: func(ms []discovery.Mapping) error {
			if err := applyOptions(ms, f.options); err != nil {
				return err
			}
			return agentResources(ms, f.resources)
		},
	}
	if err := f.around(&req, os.LookupEnv); err != nil {
		return err
	}
	plan, err := executor.PlanApply(ctx, req)
	if err != nil {
		return planErr(ref, err)
	}
	if f.dryRun {
		return s.Print(plan, func(w io.Writer) error {
			printPlan(w, plan)
			fmt.Fprintln(w, "\n(dry run: nothing was changed)")
			return nil
		})
	}
	if s.Output == OutputTable || s.Output == "" {
		printPlanTo(s, plan)
	}
	names := make([]string, 0, len(plan.Components))
	totals := map[string]int64{}
	for _, it := range plan.Components {
		names = append(names, it.Component)
		totals[it.Component] = it.Bytes
	}
	prog = newProgress(s, names, totals)
	start := time.Now()
	rec, applyErr := executor.ApplyPlan(ctx, plan)
	if rec != nil {
		failed := map[string]string{}
		for _, c := range rec.Components {
			if c.Error != "" {
				failed[c.Name] = c.Error
			}
		}
		for _, c := range rec.Components {
			_, bad := failed[c.Name]
			prog.Finish(c.Name, !bad, c.Action)
		}
	}
	prog.Close()
	if applyErr != nil {
		if errors.Is(applyErr, client.ErrForbidden) || errors.Is(applyErr, client.ErrUnauthorized) {
			return platformErr("apply "+ref.String(), applyErr)
		}
		if rec == nil {
			return applyErr
		}
		return fmt.Errorf("%w\n(see helm state history %s -n %s)", applyErr, releaseName, ns)
	}
	if f.wait {
		if err := waitReady(ctx, cs, ns, rel.Workloads, f.timeout); err != nil {
			return fmt.Errorf("the data was applied, but: %w", err)
		}
	}
	return s.Print(rec, func(w io.Writer) error {
		fmt.Fprintf(w, "applied %s:%s (%s) to release %s in %s: revision %d in %s\n",
			ref.StateName(), dash(plan.Tag), shortDigest(plan.Digest), releaseName, ns, rec.Revision, time.Since(start).Round(100*time.Millisecond))
		row(w, "COMPONENT", "KIND", "ACTION", "STRATEGY", "BYTES", "DURATION")
		for _, c := range rec.Components {
			row(w, c.Name, c.Kind, dash(c.Action), dash(c.Strategy), humanize.IBytes(uint64(max(c.Bytes, 0))), c.Duration.Round(100*time.Millisecond))
		}
		return nil
	})
}

func printPlanTo(s *Settings, p *executor.Plan) {
	_ = printOut(s.Out, OutputTable, p, func(w io.Writer) error { printPlan(w, p); return nil })
}

func printPlan(w io.Writer, p *executor.Plan) {
	force := ""
	if p.Force {
		force = ", force"
	}
	fmt.Fprintf(w, "plan: %s:%s (%s) -> release %s in %s (quiesce: %v%s)\n", p.State, dash(p.Tag), shortDigest(p.Digest), p.Release, p.Namespace, p.Quiesce, force)
	row(w, "COMPONENT", "KIND", "TARGET", "ACTION", "STRATEGY", "SIZE", "REASON")
	for _, c := range p.Components {
		row(w, c.Component, c.Kind, c.Target, c.Action, c.Strategy, humanize.IBytes(uint64(max(c.Bytes, 0))), c.Reason)
	}
	printAround(w, p)
}

// printAround prints what runs around the restore: scripts, hooks and
// substitution rules (their values hidden).
func printAround(w io.Writer, p *executor.Plan) {
	if len(p.Scripts) > 0 {
		fmt.Fprintln(w)
		row(w, "SCRIPT", "WHEN", "NAMESPACE", "TIMEOUT", "VARIABLES SET")
		for _, s := range p.Scripts {
			row(w, s.Script, s.When, s.Namespace, s.Timeout, dash(strings.Join(s.Variables, ",")))
		}
	}
	if len(p.Hooks) > 0 {
		fmt.Fprintln(w)
		row(w, "HOOK", "WHEN", "SELECTOR", "CONTAINER", "COMMAND", "ON ERROR", "PODS NOW")
		for _, h := range p.Hooks {
			row(w, h.Name, h.When, h.Selector, dash(h.Container), strings.Join(h.Command, " "), h.OnError, dash(strings.Join(h.Pods, ",")))
		}
	}
	if len(p.Substitutions) > 0 {
		fmt.Fprintln(w)
		row(w, "SUBSTITUTION", "KINDS", "NAMES", "SELECTOR", "KEYS", "ENV VAR", "OLD → NEW")
		for i, r := range p.Substitutions {
			row(w, i+1, dash(strings.Join(r.Kinds, ",")), dash(strings.Join(r.Names, ",")), dash(r.Selector+annotationOf(r)),
				dash(strings.Join(r.Keys, ",")), dash(r.EnvVar), "(hidden)")
		}
	}
}

func annotationOf(r executor.PlanSubstitution) string {
	if r.Annotation == "" {
		return ""
	}
	return " annotation " + r.Annotation
}

// planErr phrases the executor's planning errors in the plugin's flags.
func planErr(ref statepkg.Ref, err error) error {
	var (
		unmapped  *executor.UnmappedError
		unknown   *executor.UnknownComponentError
		dup       *executor.DuplicateMappingError
		hookErr   *executor.HookError
		scriptErr *executor.ScriptError
		invalid   *scriptrun.ValidationError
	)
	switch {
	case errors.As(err, &unmapped):
		return usageErrorf("%v: pass --map COMPONENT=Kind/NAME for each", err)
	case errors.As(err, &unknown):
		return usageErrorf("--map/--component: %v", err)
	case errors.As(err, &dup):
		return usageErrorf("--map: %v", err)
	case errors.As(err, &hookErr):
		return usageErrorf("--%s-hook/--hooks: %v", hookErr.When, err)
	case errors.As(err, &scriptErr) && errors.As(err, &invalid):
		return usageErrorf("%v (set the script's variables in the --scripts file: variables or variables_from_env)", err)
	case errors.As(err, &scriptErr) && (errors.Is(err, client.ErrForbidden) || errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrNotFound)):
		return platformErr(scriptErr.When+" script "+scriptErr.Script, err)
	case errors.Is(err, client.ErrForbidden), errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrNotFound):
		return platformErr("state "+ref.String(), err)
	}
	return err
}

// waitReady waits until every workload has all its replicas ready.
func waitReady(ctx context.Context, cs kubernetes.Interface, ns string, ws []discovery.ReleaseWorkload, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, w := range ws {
		for {
			ready, err := isReady(ctx, cs, ns, w.Workload)
			if err != nil {
				return err
			}
			if ready {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s is not ready after %s", w.Workload, timeout)
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func isReady(ctx context.Context, cs kubernetes.Interface, ns string, w quiesce.Workload) (bool, error) {
	switch w.Kind {
	case quiesce.StatefulSet:
		o, err := cs.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("%s: %w", w, err)
		}
		want := int32(1)
		if o.Spec.Replicas != nil {
			want = *o.Spec.Replicas
		}
		return o.Status.ReadyReplicas >= want, nil
	case quiesce.Deployment:
		o, err := cs.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("%s: %w", w, err)
		}
		want := int32(1)
		if o.Spec.Replicas != nil {
			want = *o.Spec.Replicas
		}
		return o.Status.ReadyReplicas >= want, nil
	}
	return true, nil
}

// HistoryEntry is one row of helm state history.
type HistoryEntry struct {
	Revision   int                 `json:"revision"`
	Updated    time.Time           `json:"updated"`
	Status     string              `json:"status"`
	State      string              `json:"state"`
	Tag        string              `json:"tag"`
	Digest     string              `json:"digest"`
	Actor      string              `json:"actor"`
	Duration   string              `json:"duration"`
	Error      string              `json:"error,omitempty"`
	RollbackOf int                 `json:"rollbackOf,omitempty"`
	Components []records.Component `json:"components"`
}

func newHistoryCmd(s *Settings) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history RELEASE",
		Short: "Show the applies of states to a release (from its record Secrets)",
		Long: `history lists the applies to a release, oldest first, from its record Secrets
(unikube.state.v1.<release>.v<N>). STATUS is applied (what the release holds),
superseded (applied, then replaced), failed (the apply failed or was refused;
DESCRIPTION says why, and "nothing was changed" when it stopped before changing
anything), or uninstalled (written before the release was uninstalled and
installed again: the data it describes went with the uninstall; plans no longer
count it). A rollback says "rollback to revision N".`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := s.Context(cmd)
			cs, _, err := s.Kube()
			if err != nil {
				return err
			}
			ns := s.Namespace()
			rs, err := records.List(ctx, cs, ns, a[0])
			if err != nil {
				return err
			}
			rel, err := discovery.LoadRelease(ctx, cs, ns, a[0])
			switch {
			case err == nil:
				rs = records.MarkUninstalled(rs, rel.Installed)
			case len(rs) == 0:
				return err
			}
			if limit > 0 && len(rs) > limit {
				rs = rs[len(rs)-limit:]
			}
			out := make([]HistoryEntry, 0, len(rs))
			for _, r := range rs {
				out = append(out, HistoryEntry{Revision: r.Revision, Updated: r.Time, Status: r.Status, State: r.State, Tag: r.Tag,
					Digest: r.Digest, Actor: r.Actor, Duration: r.Duration.Round(100 * time.Millisecond).String(), Error: firstLine(r.Error),
					RollbackOf: r.RollbackOf, Components: r.Components})
			}
			return s.Print(out, func(w io.Writer) error {
				row(w, "REVISION", "UPDATED", "STATUS", "STATE", "TAG", "DIGEST", "DURATION", "DESCRIPTION")
				for _, e := range out {
					row(w, e.Revision, ts(e.Updated), e.Status, e.State, dash(e.Tag), shortDigest(e.Digest), e.Duration, dash(e.Description()))
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "max", 0, "show at most the newest N revisions")
	return cmd
}

// Description is the DESCRIPTION column of helm state history: a
// rollback says so, a failed apply says why, others list what each
// component did.
func (e HistoryEntry) Description() string {
	var parts []string
	if e.RollbackOf > 0 {
		parts = append(parts, fmt.Sprintf("rollback to revision %d", e.RollbackOf))
	}
	switch {
	case e.Error != "":
		parts = append(parts, e.Error)
	default:
		for _, c := range e.Components {
			parts = append(parts, c.Name+":"+dash(c.Action))
		}
	}
	if e.RollbackOf > 0 && len(parts) > 1 {
		parts[0] += ":"
	}
	return strings.Join(parts, " ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func newRollbackCmd(s *Settings) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "rollback RELEASE [REVISION]",
		Short: "Re-apply the state version of an earlier revision (default: the one before the current)",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := s.Context(cmd)
			want := 0
			if len(a) == 2 {
				n, err := strconv.Atoi(a[1])
				if err != nil || n <= 0 {
					return usageErrorf("revision %q: want a positive number (see helm state history %s)", a[1], a[0])
				}
				want = n
			}
			cs, _, err := s.Kube()
			if err != nil {
				return err
			}
			ns := s.Namespace()
			if err := executor.CheckRights(ctx, executor.Options{Client: cs, Namespace: ns}, "roll back"); err != nil {
				return err
			}
			rs, err := records.List(ctx, cs, ns, a[0])
			if err != nil {
				return err
			}
			rec, err := records.RollbackTarget(rs, "", want)
			if err != nil {
				return fmt.Errorf("rollback %s in %s: %w (helm state history %s)", a[0], ns, err, a[0])
			}
			project, state, ok := strings.Cut(rec.State, "/")
			if !ok {
				return fmt.Errorf("record %d of %s names no state (%q)", rec.Revision, a[0], rec.State)
			}
			fmt.Fprintf(s.Err, "rolling back %s to revision %d: %s@%s (%s)\n", a[0], rec.Revision, rec.State, shortDigest(rec.Digest), dash(rec.Tag))
			f.rollbackOf = rec.Revision
			return runApply(ctx, s, statepkg.Ref{Project: project, State: state, Digest: rec.Digest}, a[0], &f)
		},
	}
	f.add(cmd)
	return cmd
}

// agentResourcesUsage documents --agent-resources of apply and capture.
const agentResourcesUsage = "COMPONENT=cpu=250m,memory=512Mi: cpu/memory requests and limits of a component's agent Job " +
	"(cpu, memory set both; requests.cpu, requests.memory, limits.cpu, limits.memory one; COMPONENT * for every component; " +
	"default requests cpu=100m,memory=128Mi, limits cpu=1,memory=1Gi) (repeatable)"

// agentResources sets the --agent-resources flags on the mappings of
// their components.
func agentResources(mappings []discovery.Mapping, specs []string) error {
	if err := discovery.SetAgentResources(mappings, specs); err != nil {
		return usageErrorf("--agent-resources: %v", err)
	}
	return nil
}

// applyOptions sets the --option component.key=value flags on the mappings
// of their components.
func applyOptions(mappings []discovery.Mapping, options []string) error {
	for _, o := range options {
		kv, value, ok := strings.Cut(o, "=")
		comp, key, ok2 := strings.Cut(kv, ".")
		if !ok || !ok2 || comp == "" || key == "" {
			return usageErrorf("--option %q: want component.key=value (e.g. db.jobs=4)", o)
		}
		found := false
		for i := range mappings {
			if mappings[i].Component != comp {
				continue
			}
			found = true
			if mappings[i].Options == nil {
				mappings[i].Options = map[string]string{}
			}
			mappings[i].Options[key] = value
		}
		if !found {
			names := make([]string, 0, len(mappings))
			for _, m := range mappings {
				names = append(names, m.Component)
			}
			return usageErrorf("--option %q: the version has no component %q (it has: %s)", o, comp, strings.Join(names, ", "))
		}
	}
	return nil
}
