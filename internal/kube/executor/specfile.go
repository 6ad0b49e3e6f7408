package executor

// The files a front end without blocks of its own (`helm state apply
// --hooks/--scripts/--substitutions FILE`) reads into a Request: YAML or
// JSON in the schema of unikube_state_apply's `hooks`, `pre_script` /
// `post_script` and `substitution` blocks (manual/helm-plugin.md), so what
// one front end can say the other can too.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
)

// HookSpec is one hook of a hooks file: Terraform's `pre`/`post` block.
type HookSpec struct {
	Selector  string   `json:"selector"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
	Timeout   string   `json:"timeout,omitempty"`
	OnError   string   `json:"on_error,omitempty"`
}

// HooksFile is a hooks file: Terraform's `hooks` block.
type HooksFile struct {
	Pre  []HookSpec `json:"pre,omitempty"`
	Post []HookSpec `json:"post,omitempty"`
}

// ScriptSpec is one script of a scripts file: Terraform's `pre_script` /
// `post_script` block, plus VariablesFromEnv (variable name → name of an
// environment variable of the caller holding its value), so secrets need
// be neither in the file nor on a command line.
type ScriptSpec struct {
	Script           string            `json:"script"`
	Variables        map[string]string `json:"variables,omitempty"`
	VariablesFromEnv map[string]string `json:"variables_from_env,omitempty"`
	Namespace        string            `json:"namespace,omitempty"`
	Timeout          string            `json:"timeout,omitempty"`
}

// ScriptsFile is a scripts file.
type ScriptsFile struct {
	Pre  []ScriptSpec `json:"pre,omitempty"`
	Post []ScriptSpec `json:"post,omitempty"`
}

// SubstitutionSpec is one rule of a substitutions file: Terraform's
// `substitution` block.
type SubstitutionSpec struct {
	Kinds      []string `json:"kinds,omitempty"`
	Names      []string `json:"names,omitempty"`
	Selector   string   `json:"selector,omitempty"`
	Annotation string   `json:"annotation,omitempty"`
	Keys       []string `json:"keys,omitempty"`
	EnvVar     string   `json:"env_var,omitempty"`
	Old        string   `json:"old"`
	New        string   `json:"new"`
}

// SubstitutionsFile is a substitutions file: a list of rules, or an object
// whose `substitution` key holds it.
type SubstitutionsFile struct {
	Substitution []SubstitutionSpec `json:"substitution"`
}

// SpecError is a file that does not say what it must, with the place in
// it (e.g. "pre[1].timeout").
type SpecError struct {
	File, Field string
	Err         error
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Field, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// decodeStrict reads YAML or JSON into v; unknown fields are errors (a
// misspelt key must not silently do nothing).
func decodeStrict(file string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return &SpecError{File: file, Err: errors.New("the file is empty")}
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		// The YAML→JSON conversion's layers say nothing to the user.
		msg := err.Error()
		for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		return &SpecError{File: file, Err: errors.New(msg)}
	}
	return nil
}

// DecodeHooks reads a hooks file into the pre and post hooks of a
// request.
func DecodeHooks(file string, data []byte) (pre, post []hooks.Hook, err error) {
	var hf HooksFile
	if err := decodeStrict(file, data, &hf); err != nil {
		return nil, nil, err
	}
	if pre, err = hookList(file, Pre, hf.Pre); err != nil {
		return nil, nil, err
	}
	if post, err = hookList(file, Post, hf.Post); err != nil {
		return nil, nil, err
	}
	return pre, post, nil
}

func hookList(file, when string, specs []HookSpec) ([]hooks.Hook, error) {
	out := make([]hooks.Hook, 0, len(specs))
	for i, s := range specs {
		at := fmt.Sprintf("%s[%d]", when, i)
		if s.Selector == "" {
			return nil, &SpecError{File: file, Field: at + ".selector", Err: errors.New("missing: the label selector of the pods to run the command in, e.g. app=web")}
		}
		if len(s.Command) == 0 {
			return nil, &SpecError{File: file, Field: at + ".command", Err: errors.New(`missing: the command and its arguments, e.g. ["sh", "-c", "redis-cli FLUSHALL"]`)}
		}
		h := hooks.Hook{Name: fmt.Sprintf("%s-%d", when, i), Selector: s.Selector, Container: s.Container, Command: s.Command, OnError: s.OnError}
		switch s.OnError {
		case "", hooks.OnErrorFail, hooks.OnErrorContinue:
		default:
			return nil, &SpecError{File: file, Field: at + ".on_error", Err: fmt.Errorf("%q: want %s or %s", s.OnError, hooks.OnErrorFail, hooks.OnErrorContinue)}
		}
		if s.Timeout != "" {
			d, err := positiveDuration(s.Timeout)
			if err != nil {
				return nil, &SpecError{File: file, Field: at + ".timeout", Err: err}
			}
			h.Timeout = d
		}
		out = append(out, h)
	}
	return out, nil
}

// ParseHook reads the short form of a hook, "SELECTOR: COMMAND" (e.g.
// "app=web: redis-cli FLUSHALL"): COMMAND runs with `sh -c` in the first
// container of every running pod the selector matches (a label selector
// has no colon). Other containers, timeouts and on_error need the file.
func ParseHook(when string, i int, spec string) (hooks.Hook, error) {
	sel, cmd, ok := strings.Cut(spec, ":")
	sel, cmd = strings.TrimSpace(sel), strings.TrimSpace(cmd)
	if !ok || sel == "" || cmd == "" {
		return hooks.Hook{}, fmt.Errorf("%q: want SELECTOR: COMMAND, e.g. \"app=web: redis-cli FLUSHALL\"", spec)
	}
	return hooks.Hook{Name: fmt.Sprintf("%s-%d", when, i), Selector: sel, Command: []string{"sh", "-c", cmd}}, nil
}

// DecodeScripts reads a scripts file into the pre and post scripts of a
// request; lookupEnv (os.LookupEnv) gives the values of
// variables_from_env. An unset environment variable is an error, not an
// empty value.
func DecodeScripts(file string, data []byte, lookupEnv func(string) (string, bool)) (pre, post []Script, err error) {
	var sf ScriptsFile
	if err := decodeStrict(file, data, &sf); err != nil {
		return nil, nil, err
	}
	if pre, err = scriptList(file, Pre, sf.Pre, lookupEnv); err != nil {
		return nil, nil, err
	}
	if post, err = scriptList(file, Post, sf.Post, lookupEnv); err != nil {
		return nil, nil, err
	}
	return pre, post, nil
}

func scriptList(file, when string, specs []ScriptSpec, lookupEnv func(string) (string, bool)) ([]Script, error) {
	out := make([]Script, 0, len(specs))
	for i, s := range specs {
		at := fmt.Sprintf("%s[%d]", when, i)
		if s.Script == "" {
			return nil, &SpecError{File: file, Field: at + ".script", Err: errors.New("missing: the script as project/name, e.g. shop/anonymize")}
		}
		sc := Script{Script: s.Script, Namespace: s.Namespace, Vars: map[string]string{}}
		for k, v := range s.Variables {
			sc.Vars[k] = v
		}
		for k, env := range s.VariablesFromEnv {
			if _, dup := s.Variables[k]; dup {
				return nil, &SpecError{File: file, Field: at + ".variables_from_env." + k, Err: errors.New("set in variables too; give each variable one value")}
			}
			v, ok := lookupEnv(env)
			if !ok {
				return nil, &SpecError{File: file, Field: at + ".variables_from_env." + k, Err: fmt.Errorf("the environment variable %s is not set", env)}
			}
			sc.Vars[k] = v
		}
		if s.Timeout != "" {
			d, err := positiveDuration(s.Timeout)
			if err != nil {
				return nil, &SpecError{File: file, Field: at + ".timeout", Err: err}
			}
			sc.Timeout = d
		}
		out = append(out, sc)
	}
	return out, nil
}

// DecodeSubstitutions reads a substitutions file into the rules of a
// request: a list of rules, or {substitution: [rules]}.
func DecodeSubstitutions(file string, data []byte) ([]substitution.Rule, error) {
	var specs []SubstitutionSpec
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, &SpecError{File: file, Err: err}
	}
	if bytes.HasPrefix(bytes.TrimSpace(j), []byte("[")) {
		if err := decodeStrict(file, data, &specs); err != nil {
			return nil, err
		}
	} else {
		var sf SubstitutionsFile
		if err := decodeStrict(file, data, &sf); err != nil {
			return nil, err
		}
		specs = sf.Substitution
	}
	out := make([]substitution.Rule, 0, len(specs))
	for i, s := range specs {
		r := substitution.Rule{Kinds: s.Kinds, Names: s.Names, Selector: s.Selector, Annotation: s.Annotation,
			Keys: s.Keys, EnvVar: s.EnvVar, Old: s.Old, New: s.New}
		if err := r.Validate(); err != nil {
			return nil, &SpecError{File: file, Field: fmt.Sprintf("substitution[%d]", i), Err: err}
		}
		out = append(out, r)
	}
	return out, nil
}

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 30s or 2m", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration", s)
	}
	return d, nil
}
