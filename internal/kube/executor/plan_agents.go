package executor

// The plan asks each component's target what an apply would do: one
// plan-only agent Job per postgres/mysql/redis/volume/opensearch
// component, all at once, next to the data. Only there can a driver
// read its marker and see what changed behind it (rows edited by hand,
// files touched): the namespace's records only say what the last apply
// wrote. The apply then runs exactly these plans: no second preflight,
// no Job for a component its agent found holding the version.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// ActionFail is a plan item whose target cannot be applied to: its
// agent's plan failed (unreachable, credentials, versions). Reason says
// why; ApplyPlan refuses such a plan before changing anything.
const ActionFail = "fail"

// agentPlan is what one component's plan-only agent said.
type agentPlan struct {
	plan driver.ComponentPlan
	err  error
}

// planAgents runs the plan-only agent Job of every target at once and
// returns what each said, by component. Its error is one that stops the
// whole plan (rights, options, the job token); a component's own failure
// is in its agentPlan.
func planAgents(ctx context.Context, o Options, targets []discovery.Target, digest string) (map[string]agentPlan, error) {
	log := agentDefaults(o.Logger, &o.AgentImage, &o.ClientVersion)
	if o.PlatformURL == "" {
		o.PlatformURL = o.Platform.Endpoint()
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Hour
	}
	if !o.SkipRBACCheck {
		want, err := rbac.Needed(rbac.OpRestore)
		if err != nil {
			return nil, err
		}
		if err := rbac.Check(ctx, o.Client, o.Namespace, want); err != nil {
			return nil, err
		}
	}
	if err := checkOptions(targets); err != nil {
		return nil, err
	}
	jt, err := o.Platform.CreateJobToken(ctx, o.Ref.Project, o.Ref.State, digest, o.Timeout+time.Hour)
	if err != nil {
		return nil, fmt.Errorf("mint a job token for %s: %w", o.Ref.StateName(), err)
	}
	if o.CAConfigMap, err = caConfigMap(ctx, o.Client, o.Namespace, o.CAConfigMap, o.CABundle, o.Platform); err != nil {
		return nil, err
	}
	start := time.Now()
	out := make(map[string]agentPlan, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			var ap agentPlan
			_, res, err := runOne(ctx, o, t, digest, jt.Token, true, log)
			switch {
			case err != nil:
				ap.err = err
			case res.Last.Plan == nil:
				ap.err = fmt.Errorf("component %s: the agent's result line carries no plan", t.Component)
			default:
				ap.plan = *res.Last.Plan
			}
			log.Info("planned", "component", t.Component, "action", ap.plan.Action, "reason", ap.plan.Reason, "error", ap.err)
			mu.Lock()
			out[t.Component] = ap
			mu.Unlock()
		})
	}
	wg.Wait()
	log.Info("apply step", "step", "plan jobs", "took", time.Since(start).Round(time.Millisecond), "components", len(targets))
	return out, ctx.Err()
}

// agentItem turns what a component's agent said into its plan item; the
// records' verdict (action, reason) stays where the agent agrees.
func agentItem(it *PlanItem, ap agentPlan, recAction string) {
	if ap.err != nil {
		it.Action, it.Reason = ActionFail, firstLine(ap.err.Error())
		return
	}
	pl := ap.plan
	it.Warnings, it.Changed = pl.Warnings, pl.Changed
	switch {
	case pl.Action == driver.ActionSkip:
		it.Action, it.Bytes, it.Files = string(driver.ActionSkip), 0, 0
		if recAction != string(driver.ActionSkip) {
			it.Reason = "the target's marker says it holds this version (" + dash(pl.Reason) + ")"
			it.unrecorded = true
		}
	case pl.Drifted():
		it.Action, it.Reason, it.Bytes, it.Files = string(driver.ActionReplace), pl.Reason, pl.Bytes, pl.Files
	default:
		it.Action, it.Bytes, it.Files = string(driver.ActionReplace), pl.Bytes, pl.Files
		switch {
		case recAction == string(driver.ActionSkip) && pl.Current != "":
			it.Reason = fmt.Sprintf("%s, but the target holds %s", it.Reason, shortDigest(pl.Current))
		case recAction == string(driver.ActionSkip):
			it.Reason += ", but the target has no marker of it"
		case pl.Reason != "" && !strings.Contains(it.Reason, "forced"):
			it.Reason += "; " + pl.Reason
		}
	}
}

// failedError says which components' agents could not plan; nil when
// none.
func (p *Plan) failedError() error {
	var errs []error
	for _, it := range p.Components {
		if ap, ok := p.agents[it.Component]; ok && ap.err != nil {
			errs = append(errs, ap.err)
		}
	}
	return errors.Join(errs...)
}

// plannedTargets drops the targets the plan's agents found holding the
// version (they get no Job) and returns them as skipped record
// components; ok is false when the plan ran no agents.
func plannedTargets(o Options, targets []discovery.Target) (todo []discovery.Target, skipped []string, ok bool) {
	p := o.planned
	if p == nil || p.agents == nil {
		return targets, nil, false
	}
	for _, t := range targets {
		if ap, ran := p.agents[t.Component]; ran && ap.err == nil && ap.plan.Action == driver.ActionSkip {
			skipped = append(skipped, t.Component)
			continue
		}
		todo = append(todo, t)
	}
	return todo, skipped, true
}
