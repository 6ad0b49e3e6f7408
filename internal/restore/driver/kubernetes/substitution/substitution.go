// Package substitution rewrites values in ConfigMaps and Secrets restored
// from a state, so a state captured in one namespace (`staging`) can be
// cloned into another (`dev-alice`): each rule selects objects (by kind,
// name, label selector, annotation) and values (data keys, or one
// environment variable inside env-style values or used as a key) and
// replaces old with new. Pure logic; the executor applies it to the
// objects of a `kubernetes` component before they are written.
package substitution

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Rule is one old → new replacement.
type Rule struct {
	// Object selection; empty fields match everything.
	Kinds      []string // ConfigMap, Secret
	Names      []string
	Selector   string // label selector
	Annotation string // "key" or "key=value"
	// Value selection: Keys limits to these data keys; EnvVar limits to
	// the value of that variable (a key named so, or NAME=value lines).
	Keys   []string
	EnvVar string
	Old    string
	New    string
}

// Object is the part of a ConfigMap or Secret rules look at.
type Object struct {
	Kind        string
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Data        map[string][]byte
}

// Validate reports a rule that cannot work.
func (r Rule) Validate() error {
	if r.Old == "" {
		return errors.New("substitution rule: old value is empty")
	}
	for _, k := range r.Kinds {
		if k != "ConfigMap" && k != "Secret" {
			return fmt.Errorf("substitution rule: kind %q: want ConfigMap or Secret", k)
		}
	}
	if r.Selector != "" {
		if _, err := labels.Parse(r.Selector); err != nil {
			return fmt.Errorf("substitution rule: selector %q: %w", r.Selector, err)
		}
	}
	return nil
}

func (r Rule) matches(o *Object) bool {
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, o.Kind) {
		return false
	}
	if len(r.Names) > 0 && !slices.Contains(r.Names, o.Name) {
		return false
	}
	if r.Selector != "" {
		sel, err := labels.Parse(r.Selector)
		if err != nil || !sel.Matches(labels.Set(o.Labels)) {
			return false
		}
	}
	if r.Annotation != "" {
		k, v, hasValue := strings.Cut(r.Annotation, "=")
		got, ok := o.Annotations[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// Apply runs every rule over o in order and returns how many values
// changed.
func Apply(rules []Rule, o *Object) (int, error) {
	changed := 0
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			return changed, fmt.Errorf("rule %d: %w", i, err)
		}
		if !r.matches(o) {
			continue
		}
		for k, v := range o.Data {
			if len(r.Keys) > 0 && !slices.Contains(r.Keys, k) {
				continue
			}
			nv := replace(r, k, v)
			if !bytes.Equal(nv, v) {
				o.Data[k] = nv
				changed++
			}
		}
	}
	return changed, nil
}

func replace(r Rule, key string, v []byte) []byte {
	from, to := []byte(r.Old), []byte(r.New)
	switch {
	case r.EnvVar == "":
		return bytes.ReplaceAll(v, from, to)
	case key == r.EnvVar:
		return bytes.ReplaceAll(v, from, to)
	}
	// NAME=value lines (an .env file in one key); other lines untouched.
	lines := bytes.SplitAfter(v, []byte("\n"))
	prefix := []byte(r.EnvVar + "=")
	for i, l := range lines {
		trimmed := bytes.TrimLeft(l, " \t")
		trimmed = bytes.TrimPrefix(trimmed, []byte("export "))
		if bytes.HasPrefix(trimmed, prefix) {
			head := len(l) - len(trimmed) + len(prefix)
			lines[i] = append(append([]byte{}, l[:head]...), bytes.ReplaceAll(l[head:], from, to)...)
		}
	}
	return bytes.Join(lines, nil)
}
