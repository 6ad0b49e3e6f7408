package substitution

import (
	"testing"
)

func obj() *Object {
	return &Object{Kind: "ConfigMap", Name: "app", Labels: map[string]string{"app": "shop"}, Annotations: map[string]string{"clone": "yes"},
		Data: map[string][]byte{
			"DATABASE_HOST": []byte("db.staging.svc.cluster.local"),
			".env":          []byte("DATABASE_HOST=db.staging.svc.cluster.local\nOTHER=staging\n  export PUBLIC_URL=https://staging.example.com\n"),
			"note":          []byte("staging"),
		}}
}

// TestApply_ReplacesOnlySelectedValues covers object and value selection.
func TestApply_ReplacesOnlySelectedValues(t *testing.T) {
	cases := []struct {
		name    string
		rule    Rule
		changed int
		want    map[string]string
	}{
		{"all values of all objects", Rule{Old: "staging", New: "dev-alice"}, 3, map[string]string{
			"note": "dev-alice", "DATABASE_HOST": "db.dev-alice.svc.cluster.local"}},
		{"one key", Rule{Keys: []string{"note"}, Old: "staging", New: "x"}, 1, map[string]string{"note": "x", "DATABASE_HOST": "db.staging.svc.cluster.local"}},
		{"env var as key and in .env lines", Rule{EnvVar: "DATABASE_HOST", Old: "staging", New: "dev"}, 2, map[string]string{
			"DATABASE_HOST": "db.dev.svc.cluster.local", "note": "staging",
			".env": "DATABASE_HOST=db.dev.svc.cluster.local\nOTHER=staging\n  export PUBLIC_URL=https://staging.example.com\n"}},
		{"exported env var", Rule{EnvVar: "PUBLIC_URL", Old: "staging.example.com", New: "alice.example.com"}, 1, map[string]string{
			".env": "DATABASE_HOST=db.staging.svc.cluster.local\nOTHER=staging\n  export PUBLIC_URL=https://alice.example.com\n"}},
		{"other kind", Rule{Kinds: []string{"Secret"}, Old: "staging", New: "x"}, 0, map[string]string{"note": "staging"}},
		{"other name", Rule{Names: []string{"web"}, Old: "staging", New: "x"}, 0, nil},
		{"label selector", Rule{Selector: "app=shop", Keys: []string{"note"}, Old: "staging", New: "x"}, 1, map[string]string{"note": "x"}},
		{"label selector misses", Rule{Selector: "app=other", Old: "staging", New: "x"}, 0, nil},
		{"annotation value", Rule{Annotation: "clone=yes", Keys: []string{"note"}, Old: "staging", New: "x"}, 1, map[string]string{"note": "x"}},
		{"annotation value misses", Rule{Annotation: "clone=no", Old: "staging", New: "x"}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := obj()
			n, err := Apply([]Rule{tc.rule}, o)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.changed {
				t.Errorf("changed %d values, want %d", n, tc.changed)
			}
			for k, v := range tc.want {
				if string(o.Data[k]) != v {
					t.Errorf("%s = %q, want %q", k, o.Data[k], v)
				}
			}
		})
	}
}

// TestApply_RejectsBadRules checks rules that cannot work are errors.
func TestApply_RejectsBadRules(t *testing.T) {
	for _, r := range []Rule{{Old: ""}, {Old: "a", Kinds: []string{"Pod"}}, {Old: "a", Selector: "a=(("}} {
		if _, err := Apply([]Rule{r}, obj()); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
}
