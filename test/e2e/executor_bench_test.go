package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/access"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// BenchmarkExecutor_ApplyVsKubectlCpAndPgRestore compares, on the same
// in-cluster PostgreSQL database and the same pg_dump archive, an
// in-cluster apply (executor.Apply: preflight Job, restore Job next to the
// database fetching verified chunks from the platform, atomic swap) with
// the common manual way: `kubectl cp` of the archive into the database pod
// (a tar stream through exec, as kubectl does) and `kubectl exec ...
// pg_restore --clean`. It reports apply/manual (goal ≤ 0.5).
//
// UNIKUBE_BENCH_SIZE_MB sets the size of the table data (default 1024).
// Runs once per invocation (make bench uses -benchtime 1x).
func BenchmarkExecutor_ApplyVsKubectlCpAndPgRestore(b *testing.B) {
	sizeMB := 1024
	if v := os.Getenv("UNIKUBE_BENCH_SIZE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("UNIKUBE_BENCH_SIZE_MB=%q: want a positive number of MB", v)
		}
		sizeMB = n
	}
	env := cluster.Require(b)
	platformURL, cl := exPlatform(b, env)
	ns := env.Namespace(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	b.StopTimer()

	if _, err := cl.CreateProject(ctx, "bench", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "bench", "db", ""); err != nil {
		b.Fatal(err)
	}
	ci, err := cl.CreateToken(ctx, client.TokenRequest{Name: "ci-bench", User: "ci"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cl.PutGrant(ctx, "bench", "db", "user:ci", "maintainer"); err != nil {
		b.Fatal(err)
	}
	pod := benchDB(ctx, b, env, ns)
	psql := func(q string) string {
		b.Helper()
		out, errOut, err := execIn(ctx, env, ns, pod, "postgres", nil, "psql", "-U", "postgres", "-d", "app", "-v", "ON_ERROR_STOP=1", "-tAc", q)
		if err != nil {
			b.Fatalf("psql %q: %v %s", q, err, errOut)
		}
		return strings.TrimSpace(out)
	}

	// ~160 bytes of hex per row: compresses about as well as real text.
	rows := int64(sizeMB) << 20 / 200
	t0 := time.Now()
	psql(fmt.Sprintf(`CREATE TABLE bench (id bigint PRIMARY KEY, payload text);
		INSERT INTO bench SELECT g, md5(g::text) || md5((g+1)::text) || md5((g*7)::text) || md5((g*13)::text) || md5((g*31)::text)
		FROM generate_series(1, %d) g`, rows))
	dbSize := psql(`SELECT pg_size_pretty(pg_database_size('app'))`)
	want := psql(`SELECT count(*) || ':' || sum(length(payload)) FROM bench`)
	b.Logf("filled %d rows (%s) in %s", rows, dbSize, time.Since(t0).Round(time.Second))

	t0 = time.Now()
	v, err := executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL, UploadToken: ci.Secret,
		Project: "bench", State: "db", AgentImage: env.Image("unikube-agent"), Timeout: 50 * time.Minute,
		Mappings: []discovery.Mapping{{Component: "db", Kind: statepkg.KindPostgres, Workload: "StatefulSet/db"}},
	})
	if err != nil {
		b.Fatalf("capture: %v", err)
	}
	b.Logf("captured %s (%d MB stream) in %s", v.Tag, v.Size>>20, time.Since(t0).Round(time.Second))

	// The same pg_dump archive, as a file the manual way copies in.
	m, _, err := cl.GetManifest(ctx, "bench", "db", v.Digest)
	if err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(b.TempDir(), "app.dump")
	f, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	if err := statepkg.ReadComponent(ctx, cl.Chunks("bench", "db"), m.Components[0], f, statepkg.ReadOptions{}); err != nil {
		b.Fatalf("read the archive: %v", err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	psql(`UPDATE bench SET payload = 'changed' WHERE id % 100 = 0`)

	// Each side starts on a settled node: no checkpoint or dirty pages of
	// the step before to pay for (they stall container starts and fsyncs).
	settle := func() {
		psql(`CHECKPOINT`)
		syscall.Sync()
	}

	// The manual way: kubectl cp + kubectl exec pg_restore.
	settle()
	t0 = time.Now()
	if err := benchKubectlCp(ctx, env, ns, pod, archive, "/var/lib/postgresql/data/app.dump"); err != nil {
		b.Fatalf("kubectl cp: %v", err)
	}
	cp := time.Since(t0)
	if _, errOut, err := execIn(ctx, env, ns, pod, "postgres", nil, "pg_restore", "-U", "postgres", "-d", "app",
		"--clean", "--if-exists", "--no-owner", "/var/lib/postgresql/data/app.dump"); err != nil {
		b.Fatalf("kubectl exec pg_restore: %v %s", err, errOut)
	}
	manual := time.Since(t0)
	if got := psql(`SELECT count(*) || ':' || sum(length(payload)) FROM bench`); got != want {
		b.Fatalf("after the manual restore %s, want %s", got, want)
	}
	_, _, _ = execIn(ctx, env, ns, pod, "postgres", nil, "rm", "-f", "/var/lib/postgresql/data/app.dump")
	b.Logf("manual: kubectl cp %s + pg_restore %s = %s", cp.Round(time.Millisecond), (manual - cp).Round(time.Millisecond), manual.Round(time.Millisecond))

	psql(`UPDATE bench SET payload = 'changed' WHERE id % 100 = 0`)
	// The client the front ends build (access.Connect), not the test
	// harness's: its rate limit is part of what an apply costs.
	rc := rest.CopyConfig(env.RESTConfig)
	access.Tune(rc)
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	settle()
	t0 = time.Now()
	rec, err := executor.Apply(ctx, executor.Options{
		Client: kc, Namespace: ns, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "bench", State: "db", Digest: v.Digest}, Release: "bench",
		Mappings: []discovery.Mapping{{Component: "db", Workload: "StatefulSet/db", Options: benchDriverOptions()}}, AgentImage: env.Image("unikube-agent"),
		Timeout: 50 * time.Minute, Logger: benchLogger(t0),
		OnProgress: func(component string, l agentproto.Line) {
			b.Logf("+%s %s progress %+v", time.Since(t0).Round(100*time.Millisecond), component, l.Progress)
		},
	})
	apply := time.Since(t0)
	if err != nil {
		b.Fatalf("apply: %v", err)
	}
	if len(rec.Components) != 1 || rec.Components[0].Action == string(driver.ActionSkip) {
		b.Fatalf("apply did nothing: %+v", rec.Components)
	}
	pod = benchPod(ctx, b, env, ns)
	if got := psql(`SELECT count(*) || ':' || sum(length(payload)) FROM bench`); got != want {
		b.Fatalf("after the apply %s, want %s", got, want)
	}
	ratio := apply.Seconds() / manual.Seconds()
	b.Logf("database %s (%d MB of rows), archive %d MB: in-cluster apply %s, kubectl cp + pg_restore %s, ratio %.2f (goal ≤ 0.5)",
		dbSize, sizeMB, v.Size>>20, apply.Round(time.Millisecond), manual.Round(time.Millisecond), ratio)
	b.ReportMetric(ratio, "apply/manual")
	b.ReportMetric(apply.Seconds(), "apply-s")
	b.ReportMetric(manual.Seconds(), "manual-s")
	b.ReportMetric(float64(sizeMB), "size-MB")
}

// benchDriverOptions are postgres driver options for the apply from
// UNIKUBE_BENCH_PG_OPTIONS ("jobs=2 restore_settings=none"), to compare
// restore modes; none by default.
func benchDriverOptions() map[string]string {
	opts := map[string]string{}
	for _, kv := range strings.Fields(os.Getenv("UNIKUBE_BENCH_PG_OPTIONS")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			opts[k] = v
		}
	}
	return opts
}

// benchLogger writes the executor's log to stderr with the time since t0,
// so a slow step of the apply shows.
func benchLogger(t0 time.Time) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String("t", "+"+time.Since(t0).Round(10*time.Millisecond).String())
			}
			return a
		}}))
}

// benchKubectlCp copies a local file into a container the way `kubectl cp`
// does: a tar stream into `tar xf -` through exec.
func benchKubectlCp(ctx context.Context, env *cluster.Env, ns, pod, local, remote string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: filepath.Base(remote), Mode: 0o600, Size: st.Size(), ModTime: st.ModTime()})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, errOut, err := execIn(ctx, env, ns, pod, "postgres", pr, "tar", "xmf", "-", "-C", filepath.Dir(remote))
	if err != nil {
		return fmt.Errorf("%w: %s", err, errOut)
	}
	out, _, err := execIn(ctx, env, ns, pod, "postgres", nil, "stat", "-c", "%s", remote)
	if err != nil || strings.TrimSpace(out) != strconv.FormatInt(st.Size(), 10) {
		return fmt.Errorf("copied %s bytes of %d (%v)", strings.TrimSpace(out), st.Size(), err)
	}
	return nil
}

// benchDB starts a PostgreSQL StatefulSet "db" with a PVC and returns its
// pod.
func benchDB(ctx context.Context, b *testing.B, env *cluster.Env, ns string) string {
	b.Helper()
	cs := env.Client
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "bench-pw"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"},
			Ports: []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432)}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	uid, one := int64(999), int32(1)
	_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: map[string]string{"app": "db"}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one, ServiceName: "db", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid},
					Containers: []corev1.Container{{
						Name: "postgres", Image: env.Image("postgres"), ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
							{Name: "POSTGRES_DB", Value: "app"},
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
						},
						Ports:        []corev1.ContainerPort{{ContainerPort: 5432}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
							Command: []string{"pg_isready", "-U", "postgres", "-h", "127.0.0.1"}}}, PeriodSeconds: 1,
							// A loaded CI node answers slowly: a flapping probe would take the
							// Service's endpoint away (connection refused) in mid-test.
							TimeoutSeconds: 10, FailureThreshold: 30},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}},
				}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return benchPod(ctx, b, env, ns)
}

// benchPod waits for the db pod to be ready and returns its name.
func benchPod(ctx context.Context, b *testing.B, env *cluster.Env, ns string) string {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		if err == nil {
			for _, p := range pods.Items {
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
						return p.Name
					}
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.Fatalf("db pod not ready after 5m:\n%s", podDiagnostics(ctx, env, ns))
	return ""
}
