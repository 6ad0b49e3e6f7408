package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// world is the real platform with shop/seed:v1 (a SQL postgres component
// and an uploads volume) and a candidate.
type world struct {
	srv   *platformtest.Server
	admin *client.Client
	env   map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "img"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "img", "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := admin.Chunks("shop", "seed")
	for _, tag := range []string{"v1", statepkg.ExprNewCandidate} {
		m, _, err := capture.Capture(ctx, []capture.Source{{Name: "uploads", URL: "file://" + dir}}, store, capture.Spec{State: "shop/seed", Message: "msg " + tag})
		if err != nil {
			t.Fatal(err)
		}
		db, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "sql"},
			strings.NewReader("SELECT '"+tag+"';"), statepkg.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m.Components = append(m.Components, db)
		if _, err := admin.CommitVersion(ctx, "shop", "seed", tag, m); err != nil {
			t.Fatal(err)
		}
	}
	return &world{srv: srv, admin: admin, env: map[string]string{
		client.EnvEndpoint: srv.URL, client.EnvToken: srv.AdminToken, "UNIKUBE_CONFIG": filepath.Join(t.TempDir(), "login.json"),
	}}
}

// run executes the command tree in process as main does.
func (w *world) run(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(strings.NewReader(stdin), &out, &errb)
	for k, v := range w.env {
		t.Setenv(k, v)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

func TestCommands_StateOperationsAgainstTheRealPlatform(t *testing.T) {
	w := newWorld(t)
	out, errOut, code := w.run(t, "", "show", "shop/seed:v1")
	if code != 0 || !strings.Contains(out, "TAG") || !strings.Contains(out, "v1") || !strings.Contains(out, "uploads(volume),db(postgres)") {
		t.Fatalf("show: %d %q %q", code, out, errOut)
	}
	var v client.Version
	out, _, _ = w.run(t, "", "show", "shop/seed:@candidate", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Candidate {
		t.Fatalf("show -o json: %v %q", err, out)
	}
	if out, _, _ := w.run(t, "", "show", "shop/seed:v1", "-o", "yaml"); !strings.Contains(out, "tag: v1") {
		t.Errorf("show -o yaml: %q", out)
	}
	if out, _, code := w.run(t, "", "list"); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Errorf("list: %q", out)
	}
	if out, _, code := w.run(t, "", "versions", "shop/seed"); code != 0 || strings.Count(out, "\n") != 3 {
		t.Errorf("versions: %q", out)
	}
	if out, _, code := w.run(t, "", "retag", "shop/seed:v1", "v1.0", "--dry-run"); code != 0 || !strings.Contains(out, "would retag to shop/seed:v1.0") {
		t.Errorf("retag --dry-run: %q", out)
	}
	if out, _, code := w.run(t, "", "prune-candidates", "shop/seed", "--dry-run"); code != 0 || !strings.Contains(out, "would delete shop/seed:"+v.Tag) {
		t.Errorf("prune --dry-run: %q", out)
	}
	if _, _, code := w.run(t, "", "promote", "shop/seed:@candidate"); code != 0 {
		t.Fatal("promote failed")
	}
	var latest client.Version
	out, _, _ = w.run(t, "", "show", "shop/seed", "-o", "json")
	if err := json.Unmarshal([]byte(out), &latest); err != nil || latest.Digest != v.Digest || latest.Candidate {
		t.Errorf("@latest after promote = %+v, want %s", latest, v.Digest)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"show", "shop/nope"}, 1, "not found"},
		{[]string{"show"}, 2, "accepts 1 arg"},
		{[]string{"show", "x", "-o", "xml"}, 2, "unknown output format"},
		{[]string{"apply", "--nope", "a", "b"}, 2, "unknown flag"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"apply", "shop/seed:@new-candidate", "r"}, 2, "write-only"},
	} {
		_, errOut, code := w.run(t, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%v: exit %d %q, want %d with %q in at most 2 lines", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestCommands_LoginStoresTheTokenPrivately(t *testing.T) {
	w := newWorld(t)
	login := w.env["UNIKUBE_CONFIG"]
	delete(w.env, client.EnvToken)
	delete(w.env, client.EnvEndpoint)
	t.Setenv(client.EnvToken, "")
	t.Setenv(client.EnvEndpoint, "")
	if _, errOut, code := w.run(t, "", "list"); code != 2 || !strings.Contains(errOut, "helm state login") {
		t.Errorf("list without a login: %d %q", code, errOut)
	}
	if _, errOut, code := w.run(t, "wrong-token\n", "login", w.srv.URL, "--token-stdin"); code != 1 || !strings.Contains(errOut, "rejected the token") {
		t.Errorf("login with a wrong token: %d %q", code, errOut)
	}
	if out, errOut, code := w.run(t, w.srv.AdminToken+"\n", "login", w.srv.URL, "--token-stdin"); code != 0 {
		t.Fatalf("login: %d %q %q", code, out, errOut)
	}
	st, err := os.Stat(login)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("login file %v mode %v, want 0600", err, st.Mode())
	}
	if out, _, code := w.run(t, "", "list", "shop"); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Errorf("list with the login file: %d %q", code, out)
	}
}

func TestCommands_Version(t *testing.T) {
	w := &world{env: map[string]string{}}
	if out, _, code := w.run(t, "", "version"); code != 0 || !strings.Contains(out, "helm-state") {
		t.Errorf("version: %q", out)
	}
	// -o json: the build's version, commit and date (internal/buildinfo).
	if out, _, code := w.run(t, "", "version", "-o", "json"); code != 0 || !strings.Contains(out, `"version": "dev"`) || !strings.Contains(out, `"go": "go`) {
		t.Errorf("version -o json: %d %q", code, out)
	}
}

// Cobra's __complete protocol (what plugin.complete runs for Helm)
// completes subcommands, flag values and state references from the real
// platform.
func TestCompletion_SubcommandsFlagsAndStateReferencesFromThePlatform(t *testing.T) {
	w := newWorld(t)
	complete := func(args ...string) []string {
		t.Helper()
		out, errOut, code := w.run(t, "", append([]string{"__complete"}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %q: exit %d %s", args, code, errOut)
		}
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	has := func(got []string, want ...string) {
		t.Helper()
		for _, x := range want {
			found := false
			for _, g := range got {
				if g == x || strings.HasPrefix(g, x+"\t") {
					found = true
				}
			}
			if !found {
				t.Errorf("completions %q lack %q", got, x)
			}
		}
	}
	has(complete("ap"), "apply")
	has(complete("apply", "--agent"), "--agent-resources", "--agent-image")
	has(complete("show", "-o", ""), "table", "json", "yaml")
	has(complete("show", "sh"), "shop/", ":6") // NoSpace|NoFileComp
	has(complete("show", "shop/s"), "shop/seed")
	has(complete("show", "shop/seed:"), "shop/seed:v1", "shop/seed:@latest", "shop/seed:@candidate")
	has(complete("capture", "shop", "--to", "shop/"), "shop/seed")
	has(complete("install", "shop", "./chart", "--state", "shop/seed:v"), "shop/seed:v1")
	has(complete("prune-candidates", "shop/"), "shop/seed", ":4")
	if got := complete("completion"); len(got) > 1 {
		t.Errorf("helm state completion still exists: %q (Helm's own completion covers plugins)", got)
	}
}

func TestWaits_AndHelmMajor(t *testing.T) {
	for flag, want := range map[string]bool{"--wait": true, "--wait=true": true, "--wait=watcher": true, "--wait=legacy": true,
		"--wait=hookOnly": false, "--wait=false": false, "--atomic": true, "--rollback-on-failure": true, "--timeout": false} {
		if got := waits(flag); got != want {
			t.Errorf("waits(%q) = %v, want %v", flag, got, want)
		}
	}
	for v, want := range map[string]int{"v3.22.0": 3, "v4.3": 4, "v4.3.2+g1234\n": 4} {
		if got, err := parseHelmMajor(v); err != nil || got != want {
			t.Errorf("parseHelmMajor(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	if _, err := parseHelmMajor("garbage"); err == nil {
		t.Error("parseHelmMajor(garbage): no error")
	}
}

// The post-renderer appends one post-install hook Job (and its token
// Secret) per component, targeting the chart's own services as rendered.
func TestPostRender_AddsSeedHookJobsForTheRenderedChart(t *testing.T) {
	w := newWorld(t)
	for k, v := range w.env {
		t.Setenv(k, v)
	}
	dir := filepath.Join("..", "..", "examples", "quickstart", "chart")
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load the quickstart chart (it is part of the repository): %v", err)
	}
	rv, err := chartutil.ToRenderValues(ch, map[string]any{}, common.ReleaseOptions{Name: "shop", Namespace: "dev", IsInstall: true, Revision: 1}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var in strings.Builder
	for _, n := range names {
		in.WriteString("---\n" + files[n] + "\n")
	}
	var out, errb bytes.Buffer
	s := &Settings{Out: &out, Err: &errb, In: strings.NewReader(in.String()), Getenv: os.Getenv}
	b, err := postRender(context.Background(), s, postRenderOptions{state: "shop/seed:v1", release: "shop", namespace: "dev", timeout: 600e9}, []byte(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), strings.TrimRight(in.String(), "\n")) {
		t.Error("the chart's manifests are not passed through unchanged")
	}
	var jobsFound []*batchv1.Job
	secrets := 0
	for _, doc := range docSplit.Split(string(b), -1) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			continue
		}
		switch o := obj.(type) {
		case *batchv1.Job:
			jobsFound = append(jobsFound, o)
		default:
			if strings.Contains(doc, "kind: Secret") && strings.Contains(doc, "unikube.dev/hook: \"true\"") {
				secrets++
			}
		}
	}
	if len(jobsFound) != 2 || secrets != 2 {
		t.Fatalf("%d hook jobs and %d secrets, want 2 and 2:\n%s", len(jobsFound), secrets, b)
	}
	for _, j := range jobsFound {
		if j.Annotations["helm.sh/hook"] != "" || !strings.HasPrefix(j.Name, "shop-seed-") {
			t.Errorf("job %s annotations %v", j.Name, j.Annotations)
		}
		args := strings.Join(j.Spec.Template.Spec.Containers[0].Args, " ")
		switch j.Labels["unikube.dev/component"] {
		case "db":
			if !strings.Contains(args, "--target postgres://postgres@shop-db.dev.svc.cluster.local:5432/shop") || j.Spec.Template.Spec.Containers[0].Image != "postgres:15" {
				t.Errorf("db job: image %s args %s", j.Spec.Template.Spec.Containers[0].Image, args)
			}
			if w := j.Spec.Template.Spec.InitContainers[0]; w.Name != "wait-for-service" || !strings.Contains(strings.Join(w.Command, " "), "pg_isready -q -h shop-db.dev.svc.cluster.local -p 5432") {
				t.Errorf("db job waits with %+v", w)
			}
		case "uploads":
			if !strings.Contains(args, "--target file:///data") || j.Spec.Template.Spec.Volumes[2].PersistentVolumeClaim.ClaimName != "shop-uploads" {
				t.Errorf("uploads job: %s %+v", args, j.Spec.Template.Spec.Volumes)
			}
		default:
			t.Errorf("unexpected job %s", j.Name)
		}
	}
}
