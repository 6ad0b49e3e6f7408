package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

const (
	sealKey       = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	otherKey      = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	secretDefault = "pg-Sup3r-s3cret-default"
)

func withKey(key string) platformtest.Option {
	return platformtest.WithOptions(func(o *platformtest.Options) {
		o.Env = map[string]string{"UNIKUBE_SECRET_KEY": key}
	})
}

// rawGet returns the body the API answers, as any HTTP client sees it.
func rawGet(t *testing.T, srv *platformtest.Server, token, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func seedSpec() client.ScriptSpec {
	return client.ScriptSpec{Interpreter: "sh", Body: "echo hi",
		Variables: []client.Variable{{Name: "PASSWORD", Sensitive: true, Default: secretDefault}, {Name: "MODE", Default: "fast"}}}
}

// TestScripts_SensitiveDefaultWithoutKeyIsRefused: a platform without a
// secret key does not keep sensitive defaults in plain text.
func TestScripts_SensitiveDefaultWithoutKeyIsRefused(t *testing.T) {
	srv := platformtest.Start(t)
	ctx := context.Background()
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "shop", ""))
	_, err := admin.PutScript(ctx, "shop", "seed", seedSpec())
	if !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "PASSWORD") || !strings.Contains(err.Error(), "UNIKUBE_SECRET_KEY") {
		t.Fatalf("want 400 naming the variable and UNIKUBE_SECRET_KEY, got %v", err)
	}
	if _, err := admin.GetScript(ctx, "shop", "seed"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the refused script was stored: %v", err)
	}
	// Without a default a sensitive variable is fine.
	spec := seedSpec()
	spec.Variables[0].Default = ""
	must(admin.PutScript(ctx, "shop", "seed", spec))
}

// TestScripts_SensitiveDefaultIsSealedHiddenAndHandedOnlyToTheApplierRunningIt
// checks every way out: API answers (put, get, list, runs), the database
// file, a viewer, the round trip show-and-put-back, and another key.
func TestScripts_SensitiveDefaultIsSealedHiddenAndHandedOnlyToTheApplierRunningIt(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	t.Run("same key", func(t *testing.T) {
		srv := platformtest.Start(t, withKey(sealKey), platformtest.WithOptions(func(o *platformtest.Options) { o.DataDir = dataDir }))
		admin := srv.Admin(t)
		must(admin.CreateProject(ctx, "shop", ""))
		put := must(admin.PutScript(ctx, "shop", "seed", seedSpec()))
		if v := put.Variables[0]; v.Default != "" || !v.DefaultSet || !v.Sensitive {
			t.Fatalf("PUT answered with %+v: want no default, default_set", v)
		}
		if v := put.Variables[1]; v.Default != "fast" || !v.DefaultSet {
			t.Fatalf("plain default: %+v", v)
		}
		viewerTok := srv.UserToken(t, "vera-tok", "vera")
		applierTok := srv.UserToken(t, "abe-tok", "abe")
		must(admin.PutGrant(ctx, "shop", "", "user:vera", "viewer"))
		must(admin.PutGrant(ctx, "shop", "", "user:abe", "applier"))
		for _, tok := range []string{srv.AdminToken, viewerTok, applierTok} {
			for _, path := range []string{"/api/v1/projects/shop/scripts/seed", "/api/v1/projects/shop/scripts"} {
				body := rawGet(t, srv, tok, path)
				if strings.Contains(body, secretDefault) || strings.Contains(body, "sealed") {
					t.Fatalf("GET %s shows the sensitive default: %s", path, body)
				}
				if !strings.Contains(body, `"default_set":true`) {
					t.Fatalf("GET %s does not say the default is set: %s", path, body)
				}
			}
		}
		if err := filepath.Walk(dataDir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), secretDefault) {
				t.Errorf("%s holds the sensitive default in plain text", p)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		viewer, applier := srv.Client(t, viewerTok), srv.Client(t, applierTok)
		if _, err := viewer.CreateRun(ctx, "shop", "seed", nil, ""); !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("viewer starting a run: want 403, got %v", err)
		}
		run := must(applier.CreateRun(ctx, "shop", "seed", nil, "ns/dev"))
		if run.SensitiveDefaults["PASSWORD"] != secretDefault || len(run.SensitiveDefaults) != 1 {
			t.Fatalf("the applier starting the run gets the default: %+v", run.SensitiveDefaults)
		}
		if run.Variables["PASSWORD"] == secretDefault {
			t.Fatalf("run record holds the default: %+v", run.Variables)
		}
		given := must(applier.CreateRun(ctx, "shop", "seed", map[string]string{"PASSWORD": "given"}, ""))
		if len(given.SensitiveDefaults) != 0 {
			t.Fatalf("a run that sets the variable gets no default: %+v", given.SensitiveDefaults)
		}
		for _, path := range []string{"/api/v1/projects/shop/scripts/seed/runs", "/api/v1/projects/shop/scripts/seed/runs/" + run.ID} {
			if body := rawGet(t, srv, applierTok, path); strings.Contains(body, secretDefault) {
				t.Fatalf("GET %s shows the default: %s", path, body)
			}
		}

		// Shown and put back (default_set, no value): the default stays.
		sc := must(admin.GetScript(ctx, "shop", "seed"))
		spec := client.ScriptSpec{Interpreter: sc.Interpreter, Body: "echo v2", Variables: sc.Variables}
		must(admin.PutScript(ctx, "shop", "seed", spec))
		if got := must(applier.CreateRun(ctx, "shop", "seed", nil, "")); got.SensitiveDefaults["PASSWORD"] != secretDefault {
			t.Fatalf("round trip lost the default: %+v", got.SensitiveDefaults)
		}
		// default_set on a variable that has no stored default is refused.
		spec.Variables = append(spec.Variables, client.Variable{Name: "NEW", Sensitive: true, DefaultSet: true})
		if _, err := admin.PutScript(ctx, "shop", "seed", spec); !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "NEW") {
			t.Fatalf("default_set without a stored default: want 400 naming NEW, got %v", err)
		}
	})
	t.Run("another key", func(t *testing.T) {
		srv := platformtest.Start(t, withKey(otherKey), platformtest.WithOptions(func(o *platformtest.Options) { o.DataDir = dataDir }))
		_, err := srv.Admin(t).CreateRun(ctx, "shop", "seed", nil, "")
		if !errors.Is(err, client.ErrConflict) || !strings.Contains(err.Error(), "PASSWORD") || strings.Contains(err.Error(), secretDefault) {
			t.Fatalf("want 409 naming PASSWORD, got %v", err)
		}
		// Passing the value still works.
		must(srv.Admin(t).CreateRun(ctx, "shop", "seed", map[string]string{"PASSWORD": "x"}, ""))
	})
}

// TestRuns_LogTailsAreForAppliersAndAbove: a viewer sees that a run
// happened and how it ended, not what it printed.
func TestRuns_LogTailsAreForAppliersAndAbove(t *testing.T) {
	srv := platformtest.Start(t)
	ctx := context.Background()
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "shop", ""))
	must(admin.PutScript(ctx, "shop", "seed", client.ScriptSpec{Interpreter: "sh", Body: "exit 1"}))
	viewer := srv.Client(t, srv.UserToken(t, "vera-tok", "vera"))
	applier := srv.Client(t, srv.UserToken(t, "abe-tok", "abe"))
	must(admin.PutGrant(ctx, "shop", "", "user:vera", "viewer"))
	must(admin.PutGrant(ctx, "shop", "", "user:abe", "applier"))
	run := must(applier.CreateRun(ctx, "shop", "seed", nil, ""))
	logTail, trace, code := "customer row 4711: alice@example.com\n", "line 1: exit 1", 1
	must(applier.UpdateRun(ctx, "shop", "seed", run.ID, client.RunUpdate{Status: client.RunFailed, ExitCode: &code, LogTail: &logTail, StackTrace: &trace}))

	for name, c := range map[string]*client.Client{"admin": admin, "applier": applier} {
		got := must(c.GetRun(ctx, "shop", "seed", run.ID))
		list := must(c.ListRuns(ctx, "shop", "seed", 0))
		if got.LogTail != logTail || got.StackTrace != trace || list[0].LogTail != logTail || list[0].StackTrace != trace {
			t.Errorf("%s does not see the log tail and trace: %+v / %+v", name, got, list[0])
		}
	}
	got := must(viewer.GetRun(ctx, "shop", "seed", run.ID))
	list := must(viewer.ListRuns(ctx, "shop", "seed", 0))
	if got.LogTail != "" || got.StackTrace != "" || list[0].LogTail != "" || list[0].StackTrace != "" {
		t.Fatalf("viewer sees the log: %+v / %+v", got, list[0])
	}
	if got.Status != client.RunFailed || got.ExitCode == nil || *got.ExitCode != 1 {
		t.Fatalf("viewer does not see how the run ended: %+v", got)
	}
}

// TestScripts_PlainDefaultsOfAnOlderPlatformAreHiddenAndSealedOnceAKeyIsSet:
// a sensitive default an older platform stored in plain text is hidden at
// once and sealed at the first start with a key.
func TestScripts_PlainDefaultsOfAnOlderPlatformAreHiddenAndSealedOnceAKeyIsSet(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	const legacy = "legacy-pl41n-default"
	t.Run("no key", func(t *testing.T) {
		srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) { o.DataDir = dataDir }))
		admin := srv.Admin(t)
		must(admin.CreateProject(ctx, "shop", ""))
		// As an older platform stored it.
		if _, err := srv.Platform.Store.PutScript(ctx, store.Script{Script: apitypes.Script{Project: "shop", Name: "seed", Interpreter: "sh", Body: "true",
			Variables: []store.Variable{{Name: "PASSWORD", Sensitive: true, Default: legacy}}}}); err != nil {
			t.Fatal(err)
		}
		if body := rawGet(t, srv, srv.AdminToken, "/api/v1/projects/shop/scripts/seed"); strings.Contains(body, legacy) || !strings.Contains(body, `"default_set":true`) {
			t.Fatalf("legacy default shown: %s", body)
		}
		if run := must(admin.CreateRun(ctx, "shop", "seed", nil, "")); run.SensitiveDefaults["PASSWORD"] != legacy {
			t.Fatalf("a run does not get the legacy default: %+v", run.SensitiveDefaults)
		}
	})
	t.Run("key set", func(t *testing.T) {
		srv := platformtest.Start(t, withKey(sealKey), platformtest.WithOptions(func(o *platformtest.Options) { o.DataDir = dataDir }))
		sc, err := srv.Platform.Store.GetScript(ctx, "shop", "seed")
		if err != nil {
			t.Fatal(err)
		}
		if v, sealed := sc.Variables[0], sc.Sealed["PASSWORD"]; v.Default != "" || sealed == "" || strings.Contains(sealed, legacy) {
			t.Fatalf("not sealed at start: %+v, sealed %q", v, sealed)
		}
		if run := must(srv.Admin(t).CreateRun(ctx, "shop", "seed", nil, "")); run.SensitiveDefaults["PASSWORD"] != legacy {
			t.Fatalf("a run does not get the sealed default: %+v", run.SensitiveDefaults)
		}
	})
}
