package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// chartPassword is the database password the test installs the chart with.
const chartPassword = "chart-e2e-password"

// TestExecutor_ShopChartCaptureAlterApply installs the quickstart chart
// (examples/quickstart/chart, rendered with the Helm SDK as `helm template`
// does, objects created with client-go), writes data into its PostgreSQL,
// Redis and uploads volume, captures it with agent Jobs into a version,
// alters everything, applies the version with quiesce, and checks the data
// is exactly back (checksums), the workloads are at their replica counts
// and a record Secret says applied.
func TestExecutor_ShopChartCaptureAlterApply(t *testing.T) {
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
	if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "shop", "dev", ""); err != nil {
		t.Fatal(err)
	}
	ci, err := cl.CreateToken(ctx, client.TokenRequest{Name: "ci-capture", User: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutGrant(ctx, "shop", "dev", "user:ci", "maintainer"); err != nil {
		t.Fatal(err)
	}
	chartInstall(ctx, t, env, ns, "shop")
	for _, c := range []string{"db", "cache", "web"} {
		exWaitReady(ctx, t, env, ns, "app.kubernetes.io/instance=shop,app.kubernetes.io/component="+c, 1)
	}

	dsn := func() string {
		return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/shop?sslmode=disable", chartPassword,
			portForward(t, env, ns, exPod(ctx, t, env, ns, "app.kubernetes.io/component=db"), 5432))
	}
	redisURL := func() string {
		return fmt.Sprintf("redis://127.0.0.1:%d/0", portForward(t, env, ns, exPod(ctx, t, env, ns, "app.kubernetes.io/component=cache"), 6379))
	}
	files := func() string {
		t.Helper()
		pod := exPod(ctx, t, env, ns, "app.kubernetes.io/component=web")
		out, errOut, err := execIn(ctx, env, ns, pod, "web", nil, "sh", "-c", "cd /uploads && find img -type f | xargs sha256sum | sort -k2")
		if err != nil {
			t.Fatalf("checksum uploads: %v %s", err, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	sums := func() exSums {
		return exSums{pg: exPgSum(ctx, t, dsn()), redis: exRedisSum(ctx, t, redisURL()), files: files()}
	}

	exPgExec(ctx, t, dsn(), `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'shop-' || g FROM generate_series(1, 5000) g`)
	rc := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(redisURL(), "/0"), "redis://")})
	defer rc.Close()
	for i := range 200 {
		rc.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("cart-%d", i), 0)
	}
	web := exPod(ctx, t, env, ns, "app.kubernetes.io/component=web")
	if _, e, err := execIn(ctx, env, ns, web, "web", nil, "sh", "-c",
		"mkdir -p /uploads/img && for i in 1 2 3 4 5 6; do seq 1 $((i*3000)) > /uploads/img/$i.txt; done"); err != nil {
		t.Fatalf("write uploads: %v %s", err, e)
	}
	want := sums()

	release := "app.kubernetes.io/instance=shop,app.kubernetes.io/component="
	start := time.Now()
	v, err := executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL, UploadToken: ci.Secret,
		Project: "shop", State: "dev", Quiesce: true, AgentImage: env.Image("unikube-agent"),
		Mappings: []discovery.Mapping{
			{Component: "db", Kind: statepkg.KindPostgres, Selector: release + "db", Quiesce: []string{"Deployment/shop-web"}},
			{Component: "cache", Kind: statepkg.KindRedis, Selector: release + "cache"},
			{Component: "uploads", Kind: statepkg.KindVolume, Workload: "Deployment/shop-web"},
		},
	})
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	t.Logf("captured %s (%d bytes) in %s", v.Tag, v.Size, time.Since(start).Round(time.Millisecond))

	// Alter everything.
	exPgExec(ctx, t, dsn(), `DELETE FROM items WHERE id > 10`, `UPDATE items SET name = 'x'`)
	rc = goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(redisURL(), "/0"), "redis://")})
	defer rc.Close()
	rc.FlushDB(ctx)
	rc.Set(ctx, "k:junk", "junk", 0)
	web = exPod(ctx, t, env, ns, "app.kubernetes.io/component=web")
	if _, e, err := execIn(ctx, env, ns, web, "web", nil, "sh", "-c", "rm /uploads/img/2.txt; echo x > /uploads/img/5.txt; echo y > /uploads/img/new.txt"); err != nil {
		t.Fatalf("alter uploads: %v %s", err, e)
	}
	if got := sums(); got.pg == want.pg || got.redis == want.redis || got.files == want.files {
		t.Fatal("altering changed nothing")
	}

	start = time.Now()
	rec, err := executor.Apply(ctx, executor.Options{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "shop", State: "dev", Digest: v.Digest}, Release: "shop", Quiesce: true,
		AgentImage: env.Image("unikube-agent"), Actor: "e2e",
		Mappings: []discovery.Mapping{
			{Component: "db", Selector: release + "db", Quiesce: []string{"Deployment/shop-web"}},
			{Component: "cache", Selector: release + "cache", Quiesce: []string{"Deployment/shop-web"}},
			{Component: "uploads", Workload: "Deployment/shop-web"},
		},
	})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("applied in %s: %+v", time.Since(start).Round(time.Millisecond), rec.Components)
	if got := sums(); got != want {
		t.Errorf("after apply:\n%+v\nwant\n%+v", got, want)
	}
	for _, w := range []quiesce.Workload{{Kind: quiesce.StatefulSet, Name: "shop-db"}, {Kind: quiesce.Deployment, Name: "shop-cache"}, {Kind: quiesce.Deployment, Name: "shop-web"}} {
		var replicas *int32
		var ann map[string]string
		if w.Kind == quiesce.StatefulSet {
			s, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replicas, ann = s.Spec.Replicas, s.Annotations
		} else {
			d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replicas, ann = d.Spec.Replicas, d.Annotations
		}
		if *replicas != 1 || ann[quiesce.AnnotationReplicas] != "" {
			t.Errorf("%s/%s: replicas %d annotations %v, want 1 and no quiesce annotation", w.Kind, w.Name, *replicas, ann)
		}
	}
	last, err := records.Last(ctx, env.Client, ns, "shop", "")
	if err != nil || last == nil || last.Status != records.StatusApplied || last.Digest != v.Digest {
		t.Errorf("record %+v (%v), want applied with %s", last, err, v.Digest)
	}
}

// chartInstall renders examples/quickstart/chart as `helm template` does
// (values-local.yaml, the harness's images, a known password) and creates
// its objects in ns.
func chartInstall(ctx context.Context, t *testing.T, env *cluster.Env, ns, release string) {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "quickstart", "chart")
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals, err := common.ReadValuesFile(filepath.Join(dir, "values-local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	images, ok := vals["images"].(map[string]any)
	if !ok {
		t.Fatalf("values-local.yaml: images is %T, want a map", vals["images"])
	}
	for name, img := range map[string]string{"postgres": "postgres", "redis": "redis", "web": "busybox"} {
		ref := env.Image(img)
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			ref += ":latest"
			i = strings.LastIndex(ref, ":")
		}
		images[name] = map[string]any{"repository": ref[:i], "tag": ref[i+1:], "pullPolicy": "IfNotPresent"}
	}
	vals["postgres"] = map[string]any{"password": chartPassword}
	rv, err := chartutil.ToRenderValues(ch, vals, common.ReleaseOptions{Name: release, Namespace: ns, IsInstall: true, Revision: 1}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	split := regexp.MustCompile(`(?m)^---\s*$`)
	decode := scheme.Codecs.UniversalDeserializer().Decode
	created := 0
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue
		}
		for _, doc := range split.Split(out[n], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, _, err := decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s: decode: %v\n%s", n, err, doc)
			}
			co := metav1.CreateOptions{}
			switch o := obj.(type) {
			case *corev1.Secret:
				_, err = env.Client.CoreV1().Secrets(ns).Create(ctx, o, co)
			case *corev1.ConfigMap:
				_, err = env.Client.CoreV1().ConfigMaps(ns).Create(ctx, o, co)
			case *corev1.Service:
				_, err = env.Client.CoreV1().Services(ns).Create(ctx, o, co)
			case *corev1.PersistentVolumeClaim:
				_, err = env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, o, co)
			case *appsv1.StatefulSet:
				_, err = env.Client.AppsV1().StatefulSets(ns).Create(ctx, o, co)
			case *appsv1.Deployment:
				_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, o, co)
			default:
				t.Fatalf("%s: the test does not create %T", n, obj)
			}
			if err != nil {
				t.Fatalf("%s: create: %v", n, err)
			}
			created++
		}
	}
	t.Logf("chart %s %s: %d objects", ch.Metadata.Name, ch.Metadata.Version, created)
}
