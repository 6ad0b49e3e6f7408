package executor

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
)

func TestDecodeHooks_ReadsTerraformsHooksBlock(t *testing.T) {
	pre, post, err := DecodeHooks("hooks.yaml", []byte(`
pre:
  - selector: app=db
    container: postgres
    command: ["psql", "-c", "CHECKPOINT"]
    timeout: 30s
post:
  - selector: app=cache
    command: ["sh", "-c", "redis-cli FLUSHALL"]
    on_error: continue
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []hooks.Hook{{Name: "pre-0", Selector: "app=db", Container: "postgres", Command: []string{"psql", "-c", "CHECKPOINT"}, Timeout: 30 * time.Second}}
	if !reflect.DeepEqual(want, pre) {
		t.Errorf("pre got %+v, want %+v", pre, want)
	}
	want = []hooks.Hook{{Name: "post-0", Selector: "app=cache", Command: []string{"sh", "-c", "redis-cli FLUSHALL"}, OnError: "continue"}}
	if !reflect.DeepEqual(want, post) {
		t.Errorf("post got %+v, want %+v", post, want)
	}
}

func TestDecodeFiles_NameWhatIsWrongAndWhere(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name, want string
		decode     func() error
	}{
		{"hook without command", "h.yaml: post[0].command: missing", func() error {
			_, _, err := DecodeHooks("h.yaml", []byte("post:\n  - selector: app=web\n"))
			return err
		}},
		{"hook on_error", `h.yaml: pre[0].on_error: "ignore"`, func() error {
			_, _, err := DecodeHooks("h.yaml", []byte("pre:\n  - {selector: a=b, command: [true], on_error: ignore}\n"))
			return err
		}},
		{"misspelt key", `unknown field "comand"`, func() error {
			_, _, err := DecodeHooks("h.yaml", []byte("pre:\n  - {selector: a=b, comand: [true]}\n"))
			return err
		}},
		{"bad timeout", `s.yaml: pre[0].timeout: "soon"`, func() error {
			_, _, err := DecodeScripts("s.yaml", []byte("pre:\n  - {script: shop/x, timeout: soon}\n"), env)
			return err
		}},
		{"unset environment variable", "s.yaml: post[0].variables_from_env.PASSWORD: the environment variable SHOP_PW is not set", func() error {
			_, _, err := DecodeScripts("s.yaml", []byte("post:\n  - script: shop/x\n    variables_from_env: {PASSWORD: SHOP_PW}\n"), env)
			return err
		}},
		{"empty old value", "sub.yaml: substitution[1]: substitution rule: old value is empty", func() error {
			_, err := DecodeSubstitutions("sub.yaml", []byte("- {old: a, new: b}\n- {old: '', new: b}\n"))
			return err
		}},
		{"bad kind", `kind "Deployment"`, func() error {
			_, err := DecodeSubstitutions("sub.yaml", []byte(`{"substitution": [{"kinds": ["Deployment"], "old": "a", "new": "b"}]}`))
			return err
		}},
		{"empty file", "sub.yaml: the file is empty", func() error {
			_, err := DecodeSubstitutions("sub.yaml", []byte("\n"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode()
			var se *SpecError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a *SpecError containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeScripts_VariablesFromFileAndEnvironment(t *testing.T) {
	env := map[string]string{"SHOP_PW": "s3cret"}
	pre, post, err := DecodeScripts("s.yaml", []byte(`
pre:
  - script: shop/anonymize
    namespace: shop-dev
    timeout: 10m
    variables: {SALT: pepper}
    variables_from_env: {PASSWORD: SHOP_PW}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := []Script{{Script: "shop/anonymize", Namespace: "shop-dev", Timeout: 10 * time.Minute, Vars: map[string]string{"SALT": "pepper", "PASSWORD": "s3cret"}}}
	if !reflect.DeepEqual(want, pre) {
		t.Errorf("pre got %+v, want %+v", pre, want)
	}
	if len(post) != 0 {
		t.Errorf("post = %v, want none", post)
	}
}

func TestDecodeSubstitutions_ListOrTerraformsBlockName(t *testing.T) {
	want := []substitution.Rule{{Kinds: []string{"Secret"}, Names: []string{"shop-db"}, Selector: "app=shop", Annotation: "a=b",
		Keys: []string{"DATABASE_URL"}, EnvVar: "DATABASE_URL", Old: "staging", New: "dev"}}
	for name, doc := range map[string]string{
		"yaml list": `
# rules in order
- kinds: [Secret]
  names: [shop-db]
  selector: app=shop
  annotation: a=b
  keys: [DATABASE_URL]
  env_var: DATABASE_URL
  old: staging
  new: dev
`,
		"json object": `{"substitution": [{"kinds": ["Secret"], "names": ["shop-db"], "selector": "app=shop", "annotation": "a=b",
  "keys": ["DATABASE_URL"], "env_var": "DATABASE_URL", "old": "staging", "new": "dev"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeSubstitutions("sub", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseHook_ShortFormRunsWithSh(t *testing.T) {
	h, err := ParseHook("post", 1, "app.kubernetes.io/name=cache: redis-cli FLUSHALL")
	if err != nil {
		t.Fatal(err)
	}
	want := hooks.Hook{Name: "post-1", Selector: "app.kubernetes.io/name=cache", Command: []string{"sh", "-c", "redis-cli FLUSHALL"}}
	if !reflect.DeepEqual(want, h) {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if _, err := ParseHook("pre", 0, "redis-cli FLUSHALL"); err == nil {
		t.Error("a hook without selector was accepted")
	}
}
