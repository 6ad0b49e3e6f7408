package executor

// What runs around the restore of an apply besides the restore itself: the
// pre/post cluster scripts of a Request, and what a Plan says about them,
// the hooks and the substitution rules, so every front end shows the same
// plan and runs the same steps in the same order (pre scripts, then the
// apply with its hooks, then post scripts).

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
)

// Script is a cluster script (a `helm state script` / `unikube_script`)
// run as a Job before or after the restore.
type Script struct {
	// Script is "project/name".
	Script string
	// Vars are the values of the script's variables (defaults fill the
	// rest). They often hold credentials: plans show their names only.
	Vars map[string]string
	// Namespace to run in (default: the apply's).
	Namespace string
	// Timeout of the Job (default: scriptrun.DefaultTimeout).
	Timeout time.Duration
}

// When a hook or script runs.
const (
	Pre  = "pre"
	Post = "post"
)

// PlanHook is a hook as a plan shows it.
type PlanHook struct {
	When      string   `json:"when"`
	Name      string   `json:"name"`
	Selector  string   `json:"selector"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
	Timeout   string   `json:"timeout"`
	OnError   string   `json:"on_error"`
	// Pods are the running pods the selector matches when planned.
	Pods []string `json:"pods"`
}

// PlanScript is a script as a plan shows it: the names of the variables
// set, never their values.
type PlanScript struct {
	When      string   `json:"when"`
	Script    string   `json:"script"`
	Namespace string   `json:"namespace"`
	Timeout   string   `json:"timeout"`
	Variables []string `json:"variables,omitempty"`
}

// PlanSubstitution is a substitution rule as a plan shows it: what it
// selects; its old and new values are hidden (they may be credentials).
type PlanSubstitution struct {
	Kinds      []string `json:"kinds,omitempty"`
	Names      []string `json:"names,omitempty"`
	Selector   string   `json:"selector,omitempty"`
	Annotation string   `json:"annotation,omitempty"`
	Keys       []string `json:"keys,omitempty"`
	EnvVar     string   `json:"env_var,omitempty"`
}

// HookError is a hook that cannot run as given (found when planning).
type HookError struct {
	When  string
	Index int // in PreHooks or PostHooks
	Msg   string
}

func (e *HookError) Error() string {
	return fmt.Sprintf("%s hook %d: %s (nothing was changed)", e.When, e.Index+1, e.Msg)
}

// ScriptError is a pre or post script that cannot run as given (when
// planning: Err is a *scriptrun.ValidationError or the platform's error) or
// that failed (when applying: Err is a *scriptrun.FailedError).
type ScriptError struct {
	When   string
	Index  int // in PreScripts or PostScripts
	Script string
	// Applied says whether the state was applied (a post script failed).
	Applied bool
	Err     error
}

func (e *ScriptError) Error() string {
	after := "the state was not applied"
	if e.Applied {
		after = "the state was applied"
	}
	return fmt.Sprintf("%s script %s (%s): %v", e.When, e.Script, after, e.Err)
}

func (e *ScriptError) Unwrap() error { return e.Err }

// planAround checks the hooks and scripts of p's request and describes
// them, with the substitution rules, in p.
func planAround(ctx context.Context, p *Plan) error {
	o := p.req.Options
	for _, h := range []struct {
		when string
		hs   []hooks.Hook
	}{{Pre, o.PreHooks}, {Post, o.PostHooks}} {
		for i, hk := range h.hs {
			ph, err := planHook(ctx, o, h.when, i, hk)
			if err != nil {
				return err
			}
			p.Hooks = append(p.Hooks, ph)
		}
	}
	for _, s := range []struct {
		when string
		ss   []Script
	}{{Pre, p.req.PreScripts}, {Post, p.req.PostScripts}} {
		for i, sc := range s.ss {
			ps, err := planScript(ctx, o, s.when, i, sc)
			if err != nil {
				return err
			}
			p.Scripts = append(p.Scripts, ps)
		}
	}
	for _, r := range o.Substitutions {
		p.Substitutions = append(p.Substitutions, PlanSubstitution{Kinds: r.Kinds, Names: r.Names, Selector: r.Selector,
			Annotation: r.Annotation, Keys: r.Keys, EnvVar: r.EnvVar})
	}
	return nil
}

func planHook(ctx context.Context, o Options, when string, i int, h hooks.Hook) (PlanHook, error) {
	if len(h.Command) == 0 {
		return PlanHook{}, &HookError{When: when, Index: i, Msg: "no command"}
	}
	if h.OnError == "" {
		h.OnError = hooks.OnErrorFail
	}
	if h.OnError != hooks.OnErrorFail && h.OnError != hooks.OnErrorContinue {
		return PlanHook{}, &HookError{When: when, Index: i, Msg: fmt.Sprintf("on_error %q: want %s or %s", h.OnError, hooks.OnErrorFail, hooks.OnErrorContinue)}
	}
	if _, err := labels.Parse(h.Selector); err != nil {
		return PlanHook{}, &HookError{When: when, Index: i, Msg: fmt.Sprintf("selector %q: %v", h.Selector, err)}
	}
	if h.Timeout <= 0 {
		h.Timeout = time.Minute
	}
	ph := PlanHook{When: when, Name: h.Name, Selector: h.Selector, Container: h.Container, Command: h.Command,
		Timeout: h.Timeout.String(), OnError: h.OnError, Pods: []string{}}
	pods, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: h.Selector})
	if err != nil {
		return PlanHook{}, fmt.Errorf("%s hook %d: list pods %q in %s: %w", when, i+1, h.Selector, o.Namespace, err)
	}
	for _, pod := range pods.Items {
		if pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil {
			ph.Pods = append(ph.Pods, pod.Name)
		}
	}
	slices.Sort(ph.Pods)
	return ph, nil
}

// planScript fetches the script and checks the variables against its
// declarations, so a missing or unknown variable stops the plan.
func planScript(ctx context.Context, o Options, when string, i int, s Script) (PlanScript, error) {
	fail := func(err error) (PlanScript, error) {
		return PlanScript{}, &ScriptError{When: when, Index: i, Script: s.Script, Err: err}
	}
	project, name, err := scriptrun.ParseRef(s.Script)
	if err != nil {
		return fail(err)
	}
	sc, err := o.Platform.GetScript(ctx, project, name)
	if err != nil {
		return fail(fmt.Errorf("fetch the script: %w", err))
	}
	if _, err := scriptrun.Resolve(&sc, s.Vars); err != nil {
		return fail(err)
	}
	ps := PlanScript{When: when, Script: s.Script, Namespace: s.Namespace, Timeout: s.Timeout.String(),
		Variables: slices.Sorted(maps.Keys(s.Vars))}
	if ps.Namespace == "" {
		ps.Namespace = o.Namespace
	}
	if s.Timeout <= 0 {
		ps.Timeout = scriptrun.DefaultTimeout.String()
	}
	return ps, nil
}

// applyAround runs the pre scripts, the apply, then the post scripts; a
// failed pre script stops everything, a failed post script is reported
// with the apply's record.
func applyAround(ctx context.Context, p *Plan, o Options) (*records.Record, error) {
	for i, s := range p.req.PreScripts {
		if err := runScript(ctx, o, Pre, i, s); err != nil {
			return nil, err
		}
	}
	rec, err := Apply(ctx, o)
	if err != nil {
		return rec, err
	}
	for i, s := range p.req.PostScripts {
		if err := runScript(ctx, o, Post, i, s); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

func runScript(ctx context.Context, o Options, when string, i int, s Script) error {
	ns := s.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	timeout := s.Timeout
	if dl, ok := ctx.Deadline(); ok && (timeout == 0 || time.Until(dl) < timeout) {
		timeout = time.Until(dl) // the Job's deadline no later than the caller's
	}
	start := time.Now()
	res, err := scriptrun.Run(ctx, scriptrun.Options{
		Client: o.Client, Platform: o.Platform, Namespace: ns, Script: s.Script, Vars: s.Vars, Timeout: timeout,
		Labels: map[string]string{"unikube.dev/phase": when}, Logger: o.Logger,
	})
	if err != nil {
		return &ScriptError{When: when, Index: i, Script: s.Script, Applied: when == Post, Err: err}
	}
	if o.Logger != nil {
		o.Logger.Info("script ran", "script", s.Script, "phase", when, "run", res.RunID, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
