package rbac

import (
	"errors"
	"strings"
	"testing"
)

func names(as []Access) map[string]string {
	out := map[string]string{}
	for _, a := range as {
		out[a.String()] = a.Role
	}
	return out
}

// TestRoles_EachOperationHasItsOwnRightsAndOnlyHooksExec checks the split:
// restore and capture never need pods/exec, hooks do, and each operation
// has the verbs its code uses.
func TestRoles_EachOperationHasItsOwnRightsAndOnlyHooksExec(t *testing.T) {
	rs, err := Roles()
	if err != nil || len(rs) != 3 {
		t.Fatalf("roles: %d %v", len(rs), err)
	}
	want := map[Operation][]string{
		// list events: the fast failure on a pod the namespace refuses;
		// get serviceaccounts: the workload's pull secrets.
		OpRestore: {"create jobs.batch", "patch jobs.batch", "get pods/log", "patch statefulsets.apps", "create secrets", "update configmaps", "list events", "get serviceaccounts"},
		OpCapture: {"create jobs.batch", "get pods/log", "get configmaps", "list secrets", "list events", "get serviceaccounts"},
		OpHooks:   {"create pods/exec", "list pods"},
	}
	for op, verbs := range want {
		as, err := Needed(op)
		if err != nil {
			t.Fatal(err)
		}
		got := names(as)
		for _, v := range verbs {
			if got[v] != RoleName(op) {
				t.Errorf("%s: lacks %s (have %v)", op, v, got)
			}
		}
		if _, exec := got["create pods/exec"]; exec != (op == OpHooks) {
			t.Errorf("%s: pods/exec granted = %v", op, exec)
		}
	}
	capture, _ := Needed(OpCapture)
	if _, ok := names(capture)["update configmaps"]; ok {
		t.Errorf("capture can rewrite ConfigMaps: it only reads them")
	}
	both, err := Needed(OpRestore, OpHooks)
	if err != nil {
		t.Fatal(err)
	}
	n := names(both)
	if n["create pods/exec"] != "unikube-state-hooks" || n["list pods"] != "unikube-state-restore" {
		t.Errorf("restore+hooks: %v", n)
	}
}

// TestMissingError_NamesVerbResourceAndRole checks the message.
func TestMissingError_NamesVerbResourceAndRole(t *testing.T) {
	err := error(&MissingError{Namespace: "dev", Missing: []Access{{Verb: "create", Resource: "pods", Subresource: "exec", Role: "unikube-state-hooks"}}})
	for _, want := range []string{"cannot create pods/exec", "dev", "bind the Role unikube-state-hooks"} {
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}
