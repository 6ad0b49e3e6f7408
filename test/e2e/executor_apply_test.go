package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

const exAdminToken = "uks_e2e-executor-admin-token-0123456789"

// exPlatform runs the real platform server on the node's address, so agent
// pods reach it; it returns the URL and an admin client.
func exPlatform(t testing.TB, env *cluster.Env) (string, *client.Client) {
	t.Helper()
	p := clusterfixture.StartPlatform(t, env, exAdminToken)
	return p.URL, p.Admin
}

// exApp is the test app: PostgreSQL StatefulSet with a PVC, Redis, and a
// Deployment "web" writing uploads to a PVC.
type exApp struct {
	ns       string
	password string
}

func exCreateApp(ctx context.Context, t *testing.T, env *cluster.Env, ns string) exApp {
	t.Helper()
	app := exApp{ns: ns, password: "pw-" + strings.ReplaceAll(ns, "e2e-", "")}
	clusterfixture.CreatePostgres(ctx, t, env, ns, clusterfixture.Postgres{Name: "db", Password: app.password})
	clusterfixture.CreateService(ctx, t, env, ns, "cache", map[string]string{"app": "cache"}, 6379)
	uid := int64(999)
	clusterfixture.CreateDeployment(ctx, t, env, ns, "cache", nil, corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid},
		Containers: []corev1.Container{{Name: "redis", Image: env.Image("redis"), ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{{ContainerPort: 6379}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(6379)}},
				PeriodSeconds: 1}}},
	})
	clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
	web := clusterfixture.Busybox(env, "mkdir -p /uploads/live && while true; do date > /uploads/live/heartbeat; sleep 1; done")
	web.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "uploads", MountPath: "/uploads"}}
	web.Volumes = []corev1.Volume{{Name: "uploads", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "uploads"}}}}
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, web)
	for _, name := range []string{"db", "cache", "web"} {
		exWaitReady(ctx, t, env, ns, "app="+name, 1)
	}
	return app
}

// exWaitReady waits for n ready pods of selector.
//
//nolint:unparam // every caller wants one pod today; n says what is waited for
func exWaitReady(ctx context.Context, t *testing.T, env *cluster.Env, ns, selector string, n int) {
	t.Helper()
	clusterfixture.WaitReady(ctx, t, env, ns, selector, n)
}

func exPod(ctx context.Context, t *testing.T, env *cluster.Env, ns, selector string) string {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p.Name
		}
	}
	t.Fatalf("no running pod for %s", selector)
	return ""
}

// exSeed makes version v1 of shop/seed from local sources: a PostgreSQL
// database, a Redis db and a directory. It returns checksum functions'
// expected values.
type exSums struct{ pg, redis, files string }

func exSeed(ctx context.Context, t *testing.T, cl *client.Client) (v1, v2 exSums) {
	t.Helper()
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	pg.CreateDatabase(t, "src")
	exPgExec(ctx, t, pg.URL("src"), `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'item-' || g || repeat('x', 50) FROM generate_series(1, 20000) g`)
	o, _ := goredis.ParseURL(rd.URL(1))
	rc := goredis.NewClient(o)
	defer rc.Close()
	for i := range 500 {
		rc.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("v-%d", i), 0)
	}
	dir := t.TempDir()
	for i := range 20 {
		p := filepath.Join(dir, "img", fmt.Sprintf("%02d.bin", i))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("file %d ", i), 1000*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(tag string) exSums {
		m, _, err := capture.Capture(ctx, []capture.Source{
			{Name: "db", URL: pg.URL("src")},
			{Name: "cache", URL: rd.URL(1)},
			{Name: "files", URL: "file://" + dir},
		}, cl.Chunks("shop", "seed"), capture.Spec{State: "shop/seed", Revision: tag})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CommitVersion(ctx, "shop", "seed", tag, m); err != nil {
			t.Fatal(err)
		}
		return exSums{pg: exPgSum(ctx, t, pg.URL("src")), redis: exRedisSum(ctx, t, rd.URL(1)), files: exLocalFilesSum(t, dir)}
	}
	v1 = commit("v1")
	// v2: rows deleted and changed, keys deleted and changed, files removed,
	// changed and added.
	exPgExec(ctx, t, pg.URL("src"), `DELETE FROM items WHERE id % 3 = 0`, `UPDATE items SET name = 'changed' WHERE id < 100`)
	rc.Del(ctx, "k:1", "k:2")
	rc.Set(ctx, "k:3", "changed", 0)
	_ = os.Remove(filepath.Join(dir, "img", "03.bin"))
	_ = os.WriteFile(filepath.Join(dir, "img", "04.bin"), []byte("junk"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "img", "new.bin"), []byte("new"), 0o644)
	v2 = commit("v2")
	return v1, v2
}

func exPgExec(ctx context.Context, t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range sqls {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func exPgSum(ctx context.Context, t *testing.T, dsn string) string {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var s string
	if err := c.QueryRow(ctx, `SELECT count(*) || ':' || md5(string_agg(id || name, ',' ORDER BY id)) FROM items`).Scan(&s); err != nil {
		t.Fatalf("pg checksum: %v", err)
	}
	return s
}

func exRedisSum(ctx context.Context, t *testing.T, u string) string {
	t.Helper()
	o, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	defer c.Close()
	keys, err := c.Keys(ctx, "k:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		v, _ := c.Get(ctx, k).Result()
		fmt.Fprintf(h, "%s=%s\n", k, v)
	}
	return fmt.Sprintf("%d:%s", len(keys), hex.EncodeToString(h.Sum(nil))[:16])
}

func exLocalFilesSum(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// exPodFilesSum checksums the files under /uploads/img in the web pod.
func exPodFilesSum(ctx context.Context, t *testing.T, env *cluster.Env, ns string) string {
	t.Helper()
	pod := exPod(ctx, t, env, ns, "app=web")
	out, errOut, err := execIn(ctx, env, ns, pod, "web", nil, "sh", "-c", "cd /uploads && find img -type f | xargs sha256sum | sort -k2")
	if err != nil {
		t.Fatalf("checksum files in %s: %v %s", pod, err, errOut)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func exClusterSums(ctx context.Context, t *testing.T, env *cluster.Env, app exApp) exSums {
	t.Helper()
	dbPort := portForward(t, env, app.ns, exPod(ctx, t, env, app.ns, "app=db"), 5432)
	cachePort := portForward(t, env, app.ns, exPod(ctx, t, env, app.ns, "app=cache"), 6379)
	return exSums{
		pg:    exPgSum(ctx, t, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", app.password, dbPort)),
		redis: exRedisSum(ctx, t, fmt.Sprintf("redis://127.0.0.1:%d/0", cachePort)),
		files: exPodFilesSum(ctx, t, env, app.ns),
	}
}

func exMappings() []discovery.Mapping {
	return []discovery.Mapping{
		{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
		{Component: "cache", Selector: "app=cache", Quiesce: []string{"Deployment/web"}},
		{Component: "files", Workload: "Deployment/web", Options: map[string]string{}},
	}
}

// TestExecutor_ApplyWithQuiesceRestoresDataAndRecords applies a version
// (PostgreSQL, Redis, a volume) into a running app with quiesce and checks
// the data by checksum, the replicas, and the record Secret; then applies
// v2 (rows, keys and files deleted, changed, added) and v1 again: the data
// is exactly v1's, and the earlier records are superseded.
func TestExecutor_ApplyWithQuiesceRestoresDataAndRecords(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	v1, v2 := exSeed(ctx, t, cl)
	app := exCreateApp(ctx, t, env, ns)

	apply := func(what, tag string) *records.Record {
		t.Helper()
		start := time.Now()
		rec, err := executor.Apply(ctx, executor.Options{
			Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
			Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: tag}, Release: "shop",
			Mappings: exMappings(), Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: applied in %s: %+v", what, time.Since(start).Round(time.Millisecond), rec.Components)
		return rec
	}
	check := func(what string, want exSums) {
		t.Helper()
		got := exClusterSums(ctx, t, env, app)
		if got.pg != want.pg {
			t.Errorf("%s: postgres %s, want %s", what, got.pg, want.pg)
		}
		if got.redis != want.redis {
			t.Errorf("%s: redis %s, want %s", what, got.redis, want.redis)
		}
		if got.files != want.files {
			t.Errorf("%s: files\n%s\nwant\n%s", what, got.files, want.files)
		}
		for _, name := range []string{"web", "cache"} {
			d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *d.Spec.Replicas != 1 || d.Annotations["unikube.dev/quiesced-replicas"] != "" {
				t.Errorf("%s: deployment %s replicas %d annotations %v, want 1 and no quiesce annotation", what, name, *d.Spec.Replicas, d.Annotations)
			}
		}
	}

	rec1 := apply("apply v1", "v1")
	if rec1.Status != records.StatusApplied || rec1.Revision != 1 {
		t.Fatalf("first record %+v, want applied revision 1", rec1)
	}
	check("apply v1", v1)
	apply("apply v2", "v2")
	check("apply v2", v2)
	// Back to v1: every change of v2 is undone exactly.
	rec3 := apply("apply v1 again", "v1")
	if rec3.Revision != 3 {
		t.Errorf("third record revision %d, want 3", rec3.Revision)
	}
	check("apply v1 again", v1)
	rs, err := records.List(ctx, env.Client, ns, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Status != records.StatusSuperseded || rs[1].Status != records.StatusSuperseded ||
		rs[2].Status != records.StatusApplied || rs[2].Digest != rec1.Digest || rs[2].Tag != "v1" {
		t.Errorf("records %+v, want revisions 1-2 superseded and 3 applied with v1", rs)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, records.SecretName("shop", 3), metav1.GetOptions{}); err != nil {
		t.Errorf("record secret: %v", err)
	}
	// Succeeded Jobs are cleaned up.
	jl, err := env.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=unikube-state"})
	if err != nil || len(jl.Items) != 0 {
		t.Errorf("agent jobs left after success: %v %v", len(jl.Items), err)
	}
}
