package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/quickstart"
)

// TestQuickstart_SeedsTheShopAndTearsDown runs the README's first command
// the way a user does (scripts/quickstart.sh, non-interactively) against
// the local cluster, checks that the release holds exactly the seed (rows
// per table, files, Redis keys), runs it again (idempotent: nothing to
// change, still seeded), and tears it down with scripts/quickstart-down.sh.
func TestQuickstart_SeedsTheShopAndTearsDown(t *testing.T) {
	env := cluster.Require(t)
	if env.External {
		t.Skip("the quickstart test needs the local harness: pods reach the platform on the node address")
	}
	root, err := cluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ns := fmt.Sprintf("quickstart-e2e-%d", time.Now().UnixNano()%100000)
	qsEnv := append(os.Environ(),
		"KUBECONFIG="+env.Kubeconfig,
		"QUICKSTART_DIR="+dir,
		"QUICKSTART_NAMESPACE="+ns,
		"QUICKSTART_PORT="+freeNodePort(ctx, t, env),
		"QUICKSTART_KEEP_CLUSTER=1",
	)
	script := func(name string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", name))
		cmd.Dir, cmd.Env, cmd.Stdin = root, qsEnv, nil
		out, err := cmd.CombinedOutput()
		t.Logf("%s took %s", name, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	// Whatever happens, leave nothing behind (the cluster stays up).
	t.Cleanup(func() {
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "quickstart-down.sh"))
		cmd.Dir, cmd.Env = root, qsEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("quickstart-down in cleanup: %v\n%s", err, out)
		}
	})

	want := seedCounts(t, filepath.Join(root, "examples", "quickstart", "seed"))
	out := script("quickstart.sh")
	checkQuickstartOutput(t, "first run", out, want)
	k, err := quickstart.Connect(ctx, env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	checkSeeded(ctx, t, k, ns, want)

	// Idempotent: a second run reuses the platform and changes nothing.
	out = script("quickstart.sh")
	if !strings.Contains(out, "already running") {
		t.Errorf("second run did not reuse the platform:\n%s", out)
	}
	if !strings.Contains(out, "No changes.") && !strings.Contains(out, "0 added, 0 changed, 0 destroyed") {
		t.Errorf("second terraform apply changed something:\n%s", out)
	}
	checkQuickstartOutput(t, "second run", out, want)
	checkSeeded(ctx, t, k, ns, want)

	pid := readPidFile(t, filepath.Join(dir, "platform.pid"))
	script("quickstart-down.sh")
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after quickstart-down: %v, want not found", ns, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after quickstart-down: %v, want removed", dir, err)
	}
	// The stopped server may linger a moment as a zombie until init reaps it.
	for i := 0; pid > 0 && running(pid); i++ {
		if i == 50 {
			t.Errorf("platform pid %d still running after quickstart-down", pid)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// seed is what the seed directory holds: rows per table, files, Redis keys.
type seed struct {
	rows  map[string]int
	files int
	keys  int
}

// seedCounts reads the expected numbers from the seed files themselves, so
// a change of the generator needs no change here.
func seedCounts(t *testing.T, dir string) seed {
	t.Helper()
	s := seed{rows: map[string]int{}, keys: 351}
	f, err := os.Open(filepath.Join(dir, "shop.sql"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "COPY "):
			table = strings.Fields(line)[1]
		case line == `\.`:
			table = ""
		case table != "":
			s.rows[table]++
		}
	}
	err = filepath.Walk(filepath.Join(dir, "uploads"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			s.files++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.rows) != len(quickstart.Tables) || s.files == 0 {
		t.Fatalf("seed: %+v, want rows for %v and some files", s, quickstart.Tables)
	}
	return s
}

func checkQuickstartOutput(t *testing.T, what, out string, want seed) {
	t.Helper()
	for _, tbl := range quickstart.Tables {
		if !strings.Contains(out, fmt.Sprintf("%s  %d", tbl, want.rows[tbl])) && !containsFields(out, tbl, fmt.Sprint(want.rows[tbl])) {
			t.Errorf("%s: output does not show %d rows in %s:\n%s", what, want.rows[tbl], tbl, out)
		}
	}
	for _, s := range []string{fmt.Sprintf("%d files", want.files), fmt.Sprintf("%d keys", want.keys), "How long each step took", "total"} {
		if !strings.Contains(out, s) {
			t.Errorf("%s: output lacks %q:\n%s", what, s, out)
		}
	}
}

// containsFields reports whether a line of out consists of exactly these fields.
func containsFields(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// checkSeeded looks into the release itself, not at the quickstart's output.
func checkSeeded(ctx context.Context, t *testing.T, k *quickstart.Kube, ns string, want seed) {
	t.Helper()
	sel := func(c string) string { return "app.kubernetes.io/instance=shop,app.kubernetes.io/component=" + c }
	for _, tbl := range quickstart.Tables {
		out, err := k.Exec(ctx, ns, sel("db"), "postgres", "psql", "-X", "-At", "-U", "postgres", "-d", "shop", "-c", "SELECT count(*) FROM "+tbl)
		if err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		if got := strings.TrimSpace(out); got != fmt.Sprint(want.rows[tbl]) {
			t.Errorf("%s: %s rows, want %d", tbl, got, want.rows[tbl])
		}
	}
	out, err := k.Exec(ctx, ns, sel("web"), "web", "sh", "-c", "find /uploads -type f ! -name '.unikube-state*' | wc -l")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != fmt.Sprint(want.files) {
		t.Errorf("uploads: %s files, want %d", got, want.files)
	}
	keys, err := quickstart.RedisKeys(ctx, k, ns, sel("cache"))
	if err != nil {
		t.Fatal(err)
	}
	if keys != want.keys {
		t.Errorf("redis: %d keys, want %d", keys, want.keys)
	}
	// The web tier serves a restored file.
	out, err = k.Exec(ctx, ns, sel("web"), "web", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/products/p0001.svg")
	if err != nil || !bytes.Contains([]byte(out), []byte("SKU-00001")) {
		t.Errorf("web does not serve products/p0001.svg: %v %.200q", err, out)
	}
}

// freeNodePort picks a port free on the node address, where the platform
// of this test listens.
func freeNodePort(ctx context.Context, t *testing.T, env *cluster.Env) string {
	t.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	ip := ""
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("platform pid file: %v", err)
		return 0
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil {
		t.Errorf("platform pid file %s: %v", path, err)
		return 0
	}
	return pid
}
