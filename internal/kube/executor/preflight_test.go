package executor

import (
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
)

// A separate plan-only Job per component only pays off when something
// happens between the plan and the restore that a failed check must
// prevent; otherwise the restore Job's own plan is the check.
func TestNeedPreflight_OnlyWhenSomethingHappensBeforeTheRestore(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want bool
	}{
		{"plain apply: the restore Job plans first", Options{}, false},
		{"quiesce: check before scaling anything down", Options{Quiesce: true}, true},
		{"pre hooks: check before running them", Options{PreHooks: []hooks.Hook{{}}}, true},
		{"told to skip it", Options{Quiesce: true, SkipPreflight: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := needPreflight(tc.o); got != tc.want {
				t.Errorf("needPreflight = %v, want %v", got, tc.want)
			}
		})
	}
}

// Exec into the app's pods is asked for only when hooks run.
func TestApplyOperations_ExecOnlyWithHooks(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"plain apply", Options{}, "restore"},
		{"quiesce", Options{Quiesce: true}, "restore"},
		{"pre hook", Options{PreHooks: []hooks.Hook{{}}}, "restore,hooks"},
		{"post hook", Options{PostHooks: []hooks.Hook{{}}}, "restore,hooks"},
	}
	for _, tc := range cases {
		var got []string
		for _, op := range applyOperations(tc.o) {
			got = append(got, string(op))
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: operations %v, want %s", tc.name, got, tc.want)
		}
	}
}
