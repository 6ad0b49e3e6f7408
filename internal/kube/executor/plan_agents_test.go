package executor

import (
	"errors"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// The agent's plan decides a component's item: what its target holds
// wins over the records, and a target changed since the apply is a
// replace naming what changed.
func TestAgentItem_TheTargetsPlanDecides(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rec        string
		recReason  string
		ap         agentPlan
		wantAction string
		wantReason string
		wantBytes  int64
	}{
		{"records and target agree: skip", "skip", "record revision 2 already holds this version",
			agentPlan{plan: driver.ComponentPlan{Action: driver.ActionSkip, Reason: "already applied"}}, "skip", "record revision 2 already holds this version", 0},
		{"changed since apply", "skip", "record revision 2 already holds this version",
			agentPlan{plan: driver.ComponentPlan{Action: driver.ActionReplace, Reason: "changed since apply: public.items: 1 updated", Bytes: 99, Changed: []string{"public.items: 1 updated"}}},
			"replace", "changed since apply: public.items: 1 updated", 99},
		{"records say held, target holds another", "skip", "record revision 2 already holds this version",
			agentPlan{plan: driver.ComponentPlan{Action: driver.ActionReplace, Current: "sha256:0123456789abcdef0123", Bytes: 5}},
			"replace", "record revision 2 already holds this version, but the target holds sha256:0123456789ab", 5},
		{"records say replace, target holds it", "replace", "no apply of release \"r\" is recorded in ns",
			agentPlan{plan: driver.ComponentPlan{Action: driver.ActionSkip, Reason: "already applied"}},
			"skip", "the target's marker says it holds this version (already applied)", 0},
		{"agent failed", "replace", "x", agentPlan{err: errors.New("component db: password authentication failed\nlog tail")}, "fail", "component db: password authentication failed", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := PlanItem{Action: tc.rec, Reason: tc.recReason, Bytes: 10}
			agentItem(&it, tc.ap, tc.rec)
			if it.Action != tc.wantAction || it.Reason != tc.wantReason || it.Bytes != tc.wantBytes {
				t.Errorf("item %s %q %d bytes; want %s %q %d", it.Action, it.Reason, it.Bytes, tc.wantAction, tc.wantReason, tc.wantBytes)
			}
			// Skipped by the marker alone: an apply still writes the
			// record the namespace lacks.
			p := Plan{Components: []PlanItem{it}}
			if want := it.Action == "skip" && tc.rec == "skip"; p.UpToDate() != want {
				t.Errorf("UpToDate %v; want %v", p.UpToDate(), want)
			}
		})
	}
}
