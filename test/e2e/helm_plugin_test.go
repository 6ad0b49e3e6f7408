package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// helmWorld is one helm plugin test: the real helm CLI with the plugin
// installed into a temp HELM_PLUGINS, the cluster, a namespace, and the
// real platform on the node address.
type helmWorld struct {
	env     *cluster.Env
	ns      string
	url     string
	admin   *client.Client
	helm    string
	baseEnv []string
	token   string // UNIKUBE_TOKEN of the helm commands
}

// helmBinary is E2E_HELM_BIN, else helm from the tools dir or PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_HELM_BIN"); p != "" {
		return p
	}
	tools := os.Getenv("UNIKUBE_TOOLS_DIR")
	if tools == "" {
		home, _ := os.UserHomeDir()
		tools = filepath.Join(home, ".cache", "unikube-state")
	}
	if p := filepath.Join(tools, "bin", "helm"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		t.Fatalf("no helm CLI: run make tools (scripts/install-deps.sh installs it into %s/bin)", tools)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// newHelmWorld installs the plugin as a user does, with helm h: `helm
// plugin install <URL of the release archive>` (GoReleaser's, a snapshot of
// .goreleaser.yaml for this machine built once per test binary, served on
// loopback), on a PATH without Go; then checks `helm state version` runs
// through helm.
func newHelmWorld(ctx context.Context, t *testing.T, h helmplugin.Helm) *helmWorld {
	t.Helper()
	env := cluster.Require(t)
	url, admin := exPlatform(t, env)
	return newHelmWorldWith(ctx, t, h, env, env.Namespace(t), url, admin, exAdminToken)
}

// newHelmWorldOn is newHelmWorld with Helm 3 against a platform already
// running at url (as the host reaches it), in namespace ns, with token for
// the helm commands.
func newHelmWorldOn(ctx context.Context, t *testing.T, env *cluster.Env, ns, url string, admin *client.Client, token string) *helmWorld {
	t.Helper()
	return newHelmWorldWith(ctx, t, helmplugin.Helm{Name: "helm3", Bin: helmBinary(t), Major: 3}, env, ns, url, admin, token)
}

func newHelmWorldWith(ctx context.Context, t *testing.T, h helmplugin.Helm, env *cluster.Env, ns, url string, admin *client.Client, token string) *helmWorld {
	t.Helper()
	w := &helmWorld{env: env, ns: ns, url: url, admin: admin, helm: h.Bin, token: token}
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := helmplugin.BuildDevRelease(ctx, t, dist)
	srv := httptest.NewServer(http.FileServer(http.Dir(dist)))
	t.Cleanup(srv.Close)
	w.baseEnv = append(helmplugin.Env(tmp, helmplugin.Toolbox(t)),
		"KUBECONFIG="+env.Kubeconfig, "HELM_NAMESPACE="+w.ns,
		client.EnvEndpoint+"="+url, "UNIKUBE_AGENT_IMAGE="+env.Image("unikube-agent"),
	)
	install := []string{"plugin", "install", srv.URL + "/" + filepath.Base(archive)}
	if h.Major >= 4 {
		install = append(install, "--verify=false") // the release ships no .prov
	}
	if out, errOut, code := w.run(ctx, t, install...); code != 0 {
		t.Fatalf("helm plugin install: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := w.run(ctx, t, "state", "version")
	if code != 0 || !strings.Contains(out, "helm-state") {
		t.Fatalf("helm state version: exit %d %q %q", code, out, errOut)
	}
	v, _, _ := w.run(ctx, t, "version", "--short")
	t.Logf("helm %s, plugin: %s", strings.TrimSpace(v), strings.TrimSpace(out))
	return w
}

// forEachHelm runs f under Helm 3 and Helm 4 as subtests.
func forEachHelm(t *testing.T, f func(t *testing.T, h helmplugin.Helm)) {
	// The plugin's release archive (built once per test binary, minutes on
	// a loaded machine) is made before the subtests start their clocks.
	helmplugin.BuildDevRelease(context.Background(), t, t.TempDir())
	for _, h := range helmplugin.Binaries(t) {
		t.Run(h.Name, func(t *testing.T) { f(t, h) })
	}
}

// run runs the real helm CLI with the world's environment.
func (w *helmWorld) run(ctx context.Context, t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.helm, args...)
	cmd.Env = append(append([]string{}, w.baseEnv...), client.EnvToken+"="+w.token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// ok runs helm and fails the test on a non-zero exit.
func (w *helmWorld) ok(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, errOut, code := w.run(ctx, t, args...)
	if code != 0 {
		t.Fatalf("helm %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	t.Logf("helm %s (%s)", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return out
}

// valuesFile writes chart values using the harness's images and a known
// password.
func (w *helmWorld) valuesFile(t *testing.T) string {
	t.Helper()
	img := func(name string) map[string]any {
		ref := w.env.Image(name)
		i := strings.LastIndex(ref, ":")
		return map[string]any{"repository": ref[:i], "tag": ref[i+1:], "pullPolicy": "IfNotPresent"}
	}
	vals := map[string]any{
		"images":   map[string]any{"postgres": img("postgres"), "redis": img("redis"), "web": img("busybox")},
		"postgres": map[string]any{"password": chartPassword},
	}
	b, _ := json.Marshal(vals)
	p := filepath.Join(t.TempDir(), "values.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// shopData reads and writes the shop release's data.
type shopData struct {
	w       *helmWorld
	release string
}

func (d shopData) sel(c string) string {
	return "app.kubernetes.io/instance=" + d.release + ",app.kubernetes.io/component=" + c
}

func (d shopData) dsn(ctx context.Context, t *testing.T) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/shop?sslmode=disable", chartPassword,
		portForward(t, d.w.env, d.w.ns, exPod(ctx, t, d.w.env, d.w.ns, d.sel("db")), 5432))
}

func (d shopData) redisURL(ctx context.Context, t *testing.T) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", portForward(t, d.w.env, d.w.ns, exPod(ctx, t, d.w.env, d.w.ns, d.sel("cache")), 6379))
}

func (d shopData) webExec(ctx context.Context, t *testing.T, script string) string {
	t.Helper()
	pod := exPod(ctx, t, d.w.env, d.w.ns, d.sel("web"))
	out, errOut, err := execIn(ctx, d.w.env, d.w.ns, pod, "web", nil, "sh", "-c", script)
	if err != nil {
		t.Fatalf("exec in web: %v %s", err, errOut)
	}
	return out
}

func (d shopData) waitReady(ctx context.Context, t *testing.T) {
	for _, c := range []string{"db", "cache", "web"} {
		exWaitReady(ctx, t, d.w.env, d.w.ns, d.sel(c), 1)
	}
}

func (d shopData) sums(ctx context.Context, t *testing.T) exSums {
	t.Helper()
	d.waitReady(ctx, t)
	lines := strings.Split(strings.TrimSpace(d.webExec(ctx, t, "cd /uploads && find img -type f | xargs sha256sum | sort -k2")), "\n")
	sort.Strings(lines)
	return exSums{pg: exPgSum(ctx, t, d.dsn(ctx, t)), redis: exRedisSum(ctx, t, d.redisURL(ctx, t)), files: strings.Join(lines, "\n")}
}

// write replaces the data with generation gen's.
func (d shopData) write(ctx context.Context, t *testing.T, gen int) exSums {
	t.Helper()
	d.waitReady(ctx, t)
	exPgExec(ctx, t, d.dsn(ctx, t), `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text)`, `TRUNCATE items`,
		fmt.Sprintf(`INSERT INTO items SELECT g, 'gen%d-' || g FROM generate_series(1, %d) g`, gen, 2000*gen))
	o, _ := goredis.ParseURL(d.redisURL(ctx, t))
	rc := goredis.NewClient(o)
	rc.FlushDB(ctx)
	for i := range 100 * gen {
		rc.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("gen%d-%d", gen, i), 0)
	}
	rc.Close()
	d.webExec(ctx, t, fmt.Sprintf("rm -rf /uploads/img && mkdir -p /uploads/img && for i in $(seq 1 %d); do seq 1 $((i*1000)) | sed s/^/g%d-/ > /uploads/img/$i.txt; done", 3*gen, gen))
	return d.sums(ctx, t)
}

var ctrlChars = regexp.MustCompile(`[\x00-\x08\x0b-\x1f\x7f]`)

// TestHelmPlugin_CaptureApplyHistoryRollbackThroughHelm drives the plugin
// through the real helm CLI against a release installed with `helm
// install`: capture two versions (show, -o json, promote, @latest), apply
// them (data verified by checksums), history, rollback, prune-candidates,
// progress bars under a pty and plain output otherwise, and the errors of
// bad input.
func TestHelmPlugin_CaptureApplyHistoryRollbackThroughHelm(t *testing.T) {
	cluster.Require(t) // first: a cold cluster start must not eat the test's time budget
	forEachHelm(t, testCaptureApplyHistoryRollback)
}

func testCaptureApplyHistoryRollback(t *testing.T, h helmplugin.Helm) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	w := newHelmWorld(ctx, t, h)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	// A developer with maintainer rights on the project, and a viewer.
	if _, err := w.admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	dev, err := w.admin.CreateToken(ctx, client.TokenRequest{Name: "dev", User: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := w.admin.CreateToken(ctx, client.TokenRequest{Name: "viewer", User: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.PutGrant(ctx, "shop", "", "user:dev", client.RoleMaintainer); err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.PutGrant(ctx, "shop", "", "user:viewer", client.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// The capture Jobs upload with the developer's token; the admin token
	// drives the plugin, since only an admin may read the chunks a capture
	// uploaded before they are committed (executor.Capture reads the
	// components' descriptions back with the caller's client).
	w.baseEnv = append(w.baseEnv, "UNIKUBE_UPLOAD_TOKEN="+dev.Secret)

	chart := filepath.Join("..", "..", "examples", "quickstart", "chart")
	w.ok(ctx, t, "install", "shop", chart, "-f", w.valuesFile(t), "--wait", "--timeout", "5m")
	d := shopData{w: w, release: "shop"}
	sumsA := d.write(ctx, t, 1)

	// capture -> show (table and JSON) -> promote -> @latest.
	out := w.ok(ctx, t, "state", "capture", "shop", "--to", "shop/seed", "--message", "first seed", "--revision", "1.0", "-o", "json")
	var capA client.Version
	if err := json.Unmarshal([]byte(out), &capA); err != nil || !capA.Candidate || len(capA.Components) != 3 {
		t.Fatalf("capture output %q (%v): want a candidate with 3 components", out, err)
	}
	table := w.ok(ctx, t, "state", "show", "shop/seed:@candidate")
	for _, col := range []string{"TAG", "STATE", "REVISION", "MESSAGE", "CREATED_AT", "SIZE", "COMPONENTS", "CANDIDATE", capA.Tag, "first seed", "true"} {
		if !strings.Contains(table, col) {
			t.Errorf("show table lacks %q:\n%s", col, table)
		}
	}
	var shown client.Version
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "show", "shop/seed:@candidate", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Digest != capA.Digest || shown.Message != "first seed" || shown.Revision != "1.0" {
		t.Errorf("show -o json = %+v, want the capture %s", shown, capA.Digest)
	}
	if out := w.ok(ctx, t, "state", "promote", "shop/seed:@candidate", "--dry-run"); !strings.Contains(out, "would promote") {
		t.Errorf("promote --dry-run: %q", out)
	}
	w.ok(ctx, t, "state", "promote", "shop/seed:@candidate")
	var latest client.Version
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "show", "shop/seed", "-o", "json")), &latest); err != nil {
		t.Fatal(err)
	}
	if latest.Digest != capA.Digest || latest.Candidate {
		t.Fatalf("@latest = %s (candidate %v), want the promoted %s", latest.Digest, latest.Candidate, capA.Digest)
	}

	// A second version under a literal tag.
	sumsB := d.write(ctx, t, 2)
	if sumsB == sumsA {
		t.Fatal("generation 2 equals generation 1")
	}
	w.ok(ctx, t, "state", "capture", "shop", "--to", "shop/seed:v2", "--message", "second")

	// apply v1 (plain output: not a terminal, so no control characters).
	out, errOut, code := w.run(ctx, t, "state", "apply", "shop/seed:"+latest.Tag, "shop")
	if code != 0 {
		t.Fatalf("apply v1: exit %d\n%s\n%s", code, out, errOut)
	}
	if ctrlChars.MatchString(out + errOut) {
		t.Errorf("non-TTY apply printed control characters:\n%q", out+errOut)
	}
	for _, want := range []string{"plan:", "db", "cache", "uploads", "applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if got := d.sums(ctx, t); got != sumsA {
		t.Fatalf("after apply of v1:\n%+v\nwant\n%+v", got, sumsA)
	}

	// apply v2 under a pseudo-terminal: live bars.
	tty := w.runPTY(ctx, t, "state", "apply", "shop/seed:v2", "shop", "--agent-resources", "db=cpu=300m,memory=512Mi", "--agent-resources", "*=memory=256Mi")
	if !strings.Contains(tty, "\x1b[") || !strings.Contains(tty, "uploads") {
		t.Errorf("apply on a TTY drew no progress bars:\n%q", tty)
	}
	if got := d.sums(ctx, t); got != sumsB {
		t.Fatalf("after apply of v2:\n%+v\nwant\n%+v", got, sumsB)
	}

	// history, then rollback to v1.
	var hist []struct {
		Revision int    `json:"revision"`
		Status   string `json:"status"`
		Digest   string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "history", "shop", "-o", "json")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Status != records.StatusSuperseded || hist[0].Digest != capA.Digest || hist[1].Status != records.StatusApplied {
		t.Fatalf("history = %+v, want v1 superseded then v2 applied", hist)
	}
	if out := w.ok(ctx, t, "state", "history", "shop"); !strings.Contains(out, "REVISION") || !strings.Contains(out, "superseded") {
		t.Errorf("history table:\n%s", out)
	}
	w.ok(ctx, t, "state", "rollback", "shop")
	if got := d.sums(ctx, t); got != sumsA {
		t.Fatalf("after rollback:\n%+v\nwant v1's\n%+v", got, sumsA)
	}

	// prune-candidates removes only candidates.
	w.ok(ctx, t, "state", "capture", "shop", "--to", "shop/seed", "--component", "cache")
	if out := w.ok(ctx, t, "state", "prune-candidates", "shop/seed", "--dry-run"); !strings.Contains(out, "would delete") {
		t.Errorf("prune --dry-run: %q", out)
	}
	var pruned []client.Version
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "prune-candidates", "shop/seed", "-o", "json")), &pruned); err != nil || len(pruned) != 1 || !pruned[0].Candidate {
		t.Fatalf("pruned %+v (%v), want the one candidate", pruned, err)
	}
	var left []client.Version
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "versions", "shop/seed", "-o", "json")), &left); err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].Candidate || left[1].Candidate {
		t.Errorf("versions after prune = %+v, want the 2 non-candidates", left)
	}

	// Bad input: one clear line on stderr and exit 1; bad flags exit 2.
	for _, c := range []struct {
		name  string
		token string
		args  []string
		code  int
		want  string
	}{
		{"unknown release", "", []string{"state", "apply", "shop/seed", "nope"}, 1, "no Helm release"},
		{"unknown state", "", []string{"state", "apply", "shop/nope", "shop"}, 1, "not found"},
		{"viewer token", viewer.Secret, []string{"state", "apply", "shop/seed", "shop"}, 1, "access denied"},
		{"bad flag", "", []string{"state", "apply", "shop/seed", "shop", "--bogus"}, 2, "unknown flag"},
		{"missing args", "", []string{"state", "apply", "shop/seed"}, 2, "accepts 2 arg"},
		{"bad agent resources", "", []string{"state", "apply", "shop/seed", "shop", "--agent-resources", "db=cpu=fast"}, 2, "not a quantity"},
		{"bad reference", "", []string{"state", "show", "noslash"}, 2, "project/state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.token != "" {
				old := w.token
				w.token = c.token
				defer func() { w.token = old }()
			}
			out, errOut, code := w.run(ctx, t, c.args...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != c.code || !strings.Contains(errOut, c.want) || len(lines) > 2 {
				t.Errorf("exit %d, stderr %q (stdout %q); want exit %d, at most 2 lines with %q", code, errOut, out, c.code, c.want)
			}
		})
	}
}

// runPTY runs helm with stdout and stderr on a pseudo-terminal and
// returns what it printed.
func (w *helmWorld) runPTY(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.helm, args...)
	cmd.Env = append(append([]string{"TERM=xterm"}, w.baseEnv...), client.EnvToken+"="+w.token)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = buf.ReadFrom(f); close(done) }()
	err = cmd.Wait()
	<-done
	f.Close()
	if err != nil {
		t.Fatalf("helm %s under a pty: %v\n%s", strings.Join(args, " "), err, buf.String())
	}
	return buf.String()
}
