package statepkg

import (
	"reflect"
	"sort"
	"strings"
)

// ReleaseInfo is what a capture of a Helm release records about the
// release, in the manifest (so it is part of the version's digest): which
// chart made the data and with which values.
type ReleaseInfo struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	Revision  int      `json:"revision,omitempty"` // the Helm release revision
	Chart     ChartRef `json:"chart"`
	// Values are the user-supplied values (helm get values); DefaultValues
	// the chart's own values.yaml.
	Values        map[string]any `json:"values,omitempty"`
	DefaultValues map[string]any `json:"defaultValues,omitempty"`
	// Overridden are the dotted paths of the leaves of Values that differ
	// from DefaultValues (or that the defaults lack), sorted.
	Overridden []string `json:"overridden,omitempty"`
}

// ChartRef names a chart. Repository is a chart repository URL or an OCI
// reference, when known: Helm's release record does not keep where a chart
// came from.
type ChartRef struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	AppVersion string `json:"appVersion,omitempty"`
	Repository string `json:"repository,omitempty"`
}

// OverriddenKeys returns the dotted paths of the leaves of values that
// differ from defaults, sorted. A map in values overriding a non-map (or
// the reverse) counts as one overridden key; lists are leaves.
func OverriddenKeys(values, defaults map[string]any) []string {
	var out []string
	var walk func(prefix string, v, d map[string]any)
	walk = func(prefix string, v, d map[string]any) {
		for k, val := range v {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			def, has := d[k]
			vm, vIsMap := val.(map[string]any)
			dm, dIsMap := def.(map[string]any)
			switch {
			case vIsMap && dIsMap:
				walk(path, vm, dm)
			case vIsMap && !has:
				walk(path, vm, nil)
			case !has || !reflect.DeepEqual(val, def):
				out = append(out, path)
			}
		}
	}
	walk("", values, defaults)
	sort.Strings(out)
	return out
}

// secretWords mark a values key whose value is likely a credential.
var secretWords = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "api-key", "credential", "privatekey", "private_key", "auth"}

// SecretLookingKey reports whether a values key (one path segment) names
// a credential, so a front end masks its value when printing.
func SecretLookingKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// MaskedValues returns a copy of values with every scalar under a
// secret-looking key replaced by "***".
func MaskedValues(values map[string]any) map[string]any {
	if values == nil {
		return nil
	}
	var mask func(v any, secret bool) any
	mask = func(v any, secret bool) any {
		switch t := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[k] = mask(e, secret || SecretLookingKey(k))
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, e := range t {
				out[i] = mask(e, secret)
			}
			return out
		default:
			if secret && v != nil {
				return "***"
			}
			return v
		}
	}
	out, _ := mask(values, false).(map[string]any) // a map masks to a map
	return out
}
