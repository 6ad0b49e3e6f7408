package quickstart_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/quickstart"
)

// tourStep is one fenced ```sh block of the README's tour, marked by an
// HTML comment `<!-- tour: NAME -->` on the line before (invisible on GitHub).
type tourStep struct {
	name, script string
}

// tourSteps are the README's steps, in order; the test checks the data
// after each. A step added to or removed from the README fails the test
// until it is checked here too.
var tourSteps = []string{"setup", "capture", "promote", "apply-elsewhere", "rollback", "script", "cleanup"}

var tourMarker = regexp.MustCompile(`^<!--\s*tour:\s*([a-z-]+)\s*-->$`)

// readTour extracts the marked blocks of README.md.
func readTour(path string) ([]tourStep, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var steps []tourStep
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := tourMarker.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if !sc.Scan() || strings.TrimSpace(sc.Text()) != "```sh" {
			return nil, fmt.Errorf("tour step %s: the marker must be followed by a ```sh block", m[1])
		}
		var body strings.Builder
		closed := false
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "```" {
				closed = true
				break
			}
			body.WriteString(sc.Text() + "\n")
		}
		if !closed {
			return nil, fmt.Errorf("tour step %s: unterminated block", m[1])
		}
		steps = append(steps, tourStep{name: m[1], script: body.String()})
	}
	return steps, sc.Err()
}

// TestTour_ParsesTheREADME checks, without a cluster, that the README's
// tour has the steps TestTour_READMECommands checks, in that order.
func TestTour_ParsesTheREADME(t *testing.T) {
	root, err := cluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	steps, err := readTour(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.name)
	}
	if strings.Join(names, " ") != strings.Join(tourSteps, " ") {
		t.Fatalf("README tour steps %v, want %v (update tourSteps and the checks with the README)", names, tourSteps)
	}
	if !strings.Contains(steps[0].script, "source .quickstart/env") {
		t.Errorf("the setup step must source .quickstart/env:\n%s", steps[0].script)
	}
}

// TestTour_READMECommands is the README's five-minute tour as a test: it
// runs the quickstart (which installs the provider from its release zip in
// a filesystem mirror and the plugin from its release archive by URL, both
// with no Go on PATH), then every marked ```sh block of README.md in order,
// each in a fresh bash that has only a minimal PATH without Go and HOME and sources
// .quickstart/env as the tour's first block says, and checks the data after
// each step: the capture saw the changed prices, the promoted version is
// @latest, the second environment holds it, the rollback restored the
// seed's prices, the cluster script ran. The README's namespaces are
// replaced by the test's own so it runs beside a user's quickstart.
func TestTour_READMECommands(t *testing.T) {
	env := cluster.Require(t)
	if env.External {
		t.Skip("the tour test needs the local harness: pods reach the platform on the node address")
	}
	root, err := cluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	steps, err := readTour(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The quickstart builds every binary first (minutes on a cold build
	// cache and a busy machine); the tour gets its own time after it.
	upCtx, upCancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer upCancel()

	// The tour runs in work/, as in the repository root: .quickstart/ is
	// the test's quickstart, examples/ the repository's.
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(work, "examples")); err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano()%100000, 10)
	ns, review := "tour-qs-"+suffix, "tour-review-"+suffix
	port, err := freeNodePort(upCtx, env)
	if err != nil {
		t.Fatal(err)
	}
	var upLog bytes.Buffer
	cfg := quickstart.Config{Root: root, Dir: filepath.Join(work, ".quickstart"), Namespace: ns, Port: port,
		Kubeconfig: env.Kubeconfig, KeepCluster: true, Out: &upLog}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer dcancel()
		err := env.Client.CoreV1().Namespaces().Delete(dctx, review, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", review, err)
		}
		if err := quickstart.Down(dctx, cfg); err != nil {
			t.Errorf("quickstart down: %v", err)
		}
	})
	start := time.Now()
	res, err := quickstart.Up(upCtx, cfg)
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, upLog.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, st := range res.Steps {
		t.Logf("quickstart: %s took %s", st.Name, st.Took.Round(100*time.Millisecond))
	}
	k, err := quickstart.Connect(ctx, env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	sel := func(component string) string {
		return "app.kubernetes.io/instance=shop,app.kubernetes.io/component=" + component
	}
	priceSum := func(namespace string) int {
		t.Helper()
		out, err := k.Exec(ctx, namespace, sel("db"), "postgres", "psql", "-X", "-At", "-U", "postgres", "-d", "shop",
			"-c", "SELECT sum(price_cents) FROM products")
		if err != nil {
			t.Fatalf("prices in %s: %v", namespace, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("prices in %s: psql said %q", namespace, out)
		}
		return n
	}
	seeded := priceSum(ns)
	admin, err := client.New(client.Config{Endpoint: res.Endpoint, Token: readToken(t, filepath.Join(cfg.Dir, "admin-token")),
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}

	// The plugin came from its release archive (GoReleaser's, by URL), not
	// from the checkout: a directory of its own, whose hook kept the binary
	// the archive brought.
	if !strings.Contains(upLog.String(), "helm-state: using the bundled") {
		t.Errorf("the quickstart did not install the plugin from its release archive:\n%s", upLog.String())
	}
	plugins, _ := filepath.Glob(filepath.Join(cfg.Dir, "helm", "plugins", "*", "plugin.yaml"))
	if len(plugins) != 1 {
		t.Fatalf("plugins installed: %v, want the one from the archive", plugins)
	}
	if st, err := os.Lstat(filepath.Dir(plugins[0])); err != nil || !st.IsDir() {
		t.Errorf("plugin %s is not a directory of its own (a link to the checkout?): %v", filepath.Dir(plugins[0]), err)
	}

	// A fresh shell on a machine without Go: only what a login shell has;
	// the rest comes from the README's `source .quickstart/env`.
	shellEnv := []string{"HOME=" + os.Getenv("HOME"), "PATH=" + quickstart.PathWithoutGo("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "LANG=C.UTF-8"}
	noGo := exec.CommandContext(ctx, "bash", "-c", "source .quickstart/env && command -v go")
	noGo.Dir, noGo.Env = work, shellEnv
	if out, err := noGo.CombinedOutput(); err == nil {
		t.Fatalf("the tour's shell has go on PATH (%s): it must run without a Go toolchain", strings.TrimSpace(string(out)))
	}
	for _, s := range steps {
		script := strings.NewReplacer("shop-quickstart", ns, "shop-review", review).Replace(s.script)
		if s.name != "setup" {
			script = "source .quickstart/env\n" + script // the same shell as the setup step
		}
		stepStart := time.Now()
		cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = work, shellEnv
		b, err := cmd.CombinedOutput()
		out := string(b)
		t.Logf("tour step %s took %s", s.name, time.Since(stepStart).Round(100*time.Millisecond))
		if err != nil {
			t.Fatalf("tour step %s: %v\n$ %s\n%s", s.name, err, script, out)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("tour step %s: %s\noutput:\n%s", s.name, fmt.Sprintf(format, args...), out)
		}
		switch s.name {
		case "setup":
			if !strings.Contains(out, "shop/seed") || !strings.Contains(out, "v1") {
				fail("list/show does not show shop/seed:v1")
			}
		case "capture":
			if got := priceSum(ns); got != 2*seeded {
				fail("prices in %s: %d, want doubled %d", ns, got, 2*seeded)
			}
			v, err := admin.GetVersion(ctx, "shop", "seed", "@candidate")
			if err != nil || !v.Candidate || v.Message != "prices doubled" || len(v.Components) != 3 {
				fail("candidate: %+v, %v; want the captured version (3 components, message \"prices doubled\")", v, err)
			}
			if !strings.Contains(v.CreatedBy, "dev") {
				fail("candidate created by %q, want the tour's user dev (not the admin)", v.CreatedBy)
			}
		case "promote":
			v, err := admin.GetVersion(ctx, "shop", "seed", "@latest")
			if err != nil || v.Candidate || v.Message != "prices doubled" || strings.HasPrefix(v.Tag, "[cand]-") {
				fail("@latest: %+v, %v; want the promoted capture", v, err)
			}
		case "apply-elsewhere":
			want := strconv.Itoa(2 * seeded)
			if last := lastLine(out); last != want {
				fail("the README's psql printed %q, want %s", last, want)
			}
			if got := priceSum(review); got != 2*seeded {
				fail("prices in %s: %d, want %d", review, got, 2*seeded)
			}
			if n, err := quickstart.RedisKeys(ctx, k, review, sel("cache")); err != nil || n != res.RedisKeys {
				fail("redis keys in %s: %d, %v; want %d", review, n, err, res.RedisKeys)
			}
			files, err := k.Exec(ctx, review, sel("web"), "web", "sh", "-c", "cd /uploads && find . -type f ! -name '.unikube-state*' | wc -l")
			if n, _ := strconv.Atoi(strings.TrimSpace(files)); err != nil || n != len(res.Files) {
				fail("files in %s: %q, %v; want %d", review, files, err, len(res.Files))
			}
		case "rollback":
			if last := lastLine(out); last != strconv.Itoa(seeded) {
				fail("the README's psql printed %q, want the seed's %d", last, seeded)
			}
			if got := priceSum(ns); got != seeded {
				fail("prices in %s: %d, want the seed's %d", ns, got, seeded)
			}
			if !strings.Contains(out, "rolling back shop to revision 1") {
				fail("rollback did not go back to revision 1 (Terraform's apply)")
			}
		case "script":
			if !strings.Contains(out, "(5 rows)") || !strings.Contains(out, "succeeded") {
				fail("order-report: want its 5 rows and a succeeded run")
			}
		case "cleanup":
			if _, err := env.Client.CoreV1().Namespaces().Get(ctx, review, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				fail("namespace %s still there: %v", review, err)
			}
		default:
			t.Fatalf("tour step %s has no check: add one", s.name)
		}
	}
	t.Logf("quickstart and tour took %s", time.Since(start).Round(time.Second))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// freeNodePort finds a free port on the node address, where the platform
// listens so pods reach it.
func freeNodePort(ctx context.Context, env *cluster.Env) (int, error) {
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return 0, fmt.Errorf("nodes: %v", err)
	}
	ip := ""
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}
