package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestExecutorPlan_ForceResetsADirtiedDatabaseAndASubsetTouchesOnlyItsComponent
// plans and applies v1 into the app, dirties its database by hand (what a
// test run does to a developer's data), and checks that a plan sees that
// although the records and the marker say the version is there (db
// "changed since apply", naming the table), that a
// forced apply of the db component alone resets it to v1 while Redis and
// the files stay byte-identical and Redis's pod keeps running, and that
// the next full plan knows every component holds v1 (db from the partial
// apply's record, the others from the first).
func TestExecutorPlan_ForceResetsADirtiedDatabaseAndASubsetTouchesOnlyItsComponent(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	v1, _ := exSeed(ctx, t, cl)
	app := exCreateApp(ctx, t, env, ns)

	request := func(components []string, force bool) executor.Request {
		return executor.Request{
			Options: executor.Options{
				Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
				Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop",
				Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e", Force: force,
			},
			Explicit: exMappings(), Components: components,
		}
	}
	plan := func(what string, components []string, force bool) *executor.Plan {
		t.Helper()
		start := time.Now()
		p, err := executor.PlanApply(ctx, request(components, force))
		if err != nil {
			t.Fatalf("%s: plan: %v", what, err)
		}
		// One plan-only agent Job per component, all at once: the time a
		// plan with nothing to do takes.
		t.Logf("%s: plan in %s: %+v", what, time.Since(start).Round(time.Millisecond), p.Components)
		return p
	}
	actions := func(p *executor.Plan) map[string]string {
		out := map[string]string{}
		for _, it := range p.Components {
			out[it.Component] = it.Action
		}
		return out
	}
	apply := func(what string, p *executor.Plan) *records.Record {
		t.Helper()
		rec, err := executor.ApplyPlan(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rec
	}

	first := plan("first plan", nil, false)
	if a := actions(first); len(a) != 3 || a["db"] != "replace" || a["cache"] != "replace" || a["files"] != "replace" {
		t.Fatalf("first plan %v, want every component replaced", a)
	}
	apply("apply v1", first)
	if got := exClusterSums(ctx, t, env, app); got != v1 {
		t.Fatalf("after apply v1: %+v, want %+v", got, v1)
	}
	if p := plan("plan again", nil, false); !settled(p, "") {
		t.Fatalf("plan after the apply %+v, want every component skipped (files: but for the app's heartbeat)", p.Components)
	}

	// A test run dirties the database.
	dbPort := portForward(t, env, ns, exPod(ctx, t, env, ns, "app=db"), 5432)
	dsn := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", app.password, dbPort)
	exPgExec(ctx, t, dsn, `DELETE FROM items WHERE id < 500`, `INSERT INTO items VALUES (-1, 'left by a test')`)
	if exPgSum(ctx, t, dsn) == v1.pg {
		t.Fatal("the hand edit did not change the database")
	}
	// The records and the marker cannot see it; the table counters the
	// marker recorded at apply time can.
	if p := plan("plan after the hand edit", nil, false); !settled(p, "public.items: ") {
		t.Fatalf("plan after a hand edit %+v, want db changed since apply naming public.items, the others skipped", p.Components)
	}

	cachePod := exPod(ctx, t, env, ns, "app=cache")
	reset := plan("forced plan of db", []string{"db"}, true)
	if a := actions(reset); len(a) != 1 || a["db"] != "replace" {
		t.Fatalf("forced plan of db %v, want db alone, replaced", a)
	}
	rec := apply("forced apply of db", reset)
	if len(rec.Components) != 1 || rec.Components[0].Name != "db" || rec.Components[0].Action == "skip" {
		t.Errorf("record of the forced apply %+v, want db alone, restored", rec.Components)
	}
	got := exClusterSums(ctx, t, env, app)
	if got.pg != v1.pg {
		t.Errorf("database after the forced apply %s, want v1's %s", got.pg, v1.pg)
	}
	if got.redis != v1.redis || got.files != v1.files {
		t.Errorf("redis and files changed by an apply of db alone: %+v, want %+v", got, v1)
	}
	if now := exPod(ctx, t, env, ns, "app=cache"); now != cachePod {
		t.Errorf("cache pod %s replaced by %s: an apply of db alone quiesced it", cachePod, now)
	}
	if p := plan("full plan after the partial apply", nil, false); !settled(p, "") {
		t.Errorf("full plan after the partial apply %+v, want every component skipped (files: but for the app's heartbeat)", p.Components)
	}
}

// settled says whether p skips every component but these two: db, which
// p replaces as changed since apply naming one table (its entry starting
// with dbChanged) when dbChanged is set, and files, whose volume the app
// changes by itself (it writes live/heartbeat every second: the plan sees
// that, as changed since apply, and nothing else).
func settled(p *executor.Plan, dbChanged string) bool {
	for _, it := range p.Components {
		switch {
		case it.Component == "db" && dbChanged != "":
			if it.Action != "replace" || !strings.HasPrefix(it.Reason, "changed since apply") || len(it.Changed) != 1 || !strings.HasPrefix(it.Changed[0], dbChanged) {
				return false
			}
		case it.Component == "files" && it.Action != "skip":
			if !strings.HasPrefix(it.Reason, "changed since apply") || len(it.Changed) == 0 {
				return false
			}
			for _, c := range it.Changed {
				if !strings.HasPrefix(c, "live") {
					return false
				}
			}
		case it.Action != "skip":
			return false
		}
	}
	return true
}
