package rbac

import (
	"errors"
	"strings"
	"testing"
)

// TestNeeded_ListsEveryRuleOfTheRole checks the embedded Role parses into
// the accesses the executor uses.
func TestNeeded_ListsEveryRuleOfTheRole(t *testing.T) {
	as, err := Needed()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"create jobs.batch": false, "get pods/log": false, "patch statefulsets.apps": false, "create secrets": false}
	for _, a := range as {
		if _, ok := want[a.String()]; ok {
			want[a.String()] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("role lacks %s", k)
		}
	}
}

// TestMissingError_NamesVerbAndResource checks the message.
func TestMissingError_NamesVerbAndResource(t *testing.T) {
	err := error(&MissingError{Namespace: "dev", Missing: []Access{{Verb: "patch", Group: "apps", Resource: "statefulsets"}}})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "cannot patch statefulsets.apps") || !strings.Contains(err.Error(), "dev") {
		t.Fatalf("error %q", err)
	}
}
