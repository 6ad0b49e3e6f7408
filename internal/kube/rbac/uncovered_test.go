package rbac

import (
	"testing"

	authv1 "k8s.io/api/authorization/v1"
)

// TestUncovered_ReadsRulesAsTheAPIServerGrantsThem: wildcards grant,
// subresources are rights of their own, and a right on named objects only
// is not the right asked.
func TestUncovered_ReadsRulesAsTheAPIServerGrantsThem(t *testing.T) {
	want := []Access{
		{Verb: "get", Resource: "secrets"},
		{Verb: "create", Group: "batch", Resource: "jobs"},
		{Verb: "get", Resource: "pods", Subresource: "log"},
		{Verb: "create", Resource: "pods", Subresource: "exec"},
		{Verb: "patch", Group: "apps", Resource: "statefulsets"},
	}
	rules := []authv1.ResourceRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}},
		{Verbs: []string{"*"}, APIGroups: []string{"batch"}, Resources: []string{"*"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"one"}},
		{Verbs: []string{"get", "patch"}, APIGroups: []string{"*"}, Resources: []string{"statefulsets"}},
	}
	got := names(Uncovered(rules, want))
	if len(got) != 2 {
		t.Fatalf("uncovered %v, want get secrets and create pods/exec", got)
	}
	for _, n := range []string{"get secrets", "create pods/exec"} {
		if _, ok := got[n]; !ok {
			t.Errorf("%s is not granted, yet not listed (%v)", n, got)
		}
	}
	if n := len(Uncovered(nil, want)); n != len(want) {
		t.Errorf("no rules: %d uncovered, want all %d", n, len(want))
	}
}
