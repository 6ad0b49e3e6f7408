package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

var metaListAll = metav1.ListOptions{}

const rows = 1000

// TestPostgresStatefulSet_KeepsRowsAcrossScaleToZero is the harness's smoke
// test: a PostgreSQL StatefulSet with a PVC, rows written by a Job through
// the Service's DNS name, a scale to zero and back, and exec, logs and
// port-forward through client-go.
func TestPostgresStatefulSet_KeepsRowsAcrossScaleToZero(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	pw := randomHex(12)
	img := env.Image("postgres")

	mustCreate(t, "secret", func() error {
		_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			StringData: map[string]string{"password": pw},
		}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "db"}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, TargetPort: intstr.FromInt32(5432)}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db-hl"}, Spec: corev1.ServiceSpec{Selector: labels, ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}},
	} {
		mustCreate(t, "service "+svc.Name, func() error {
			_, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
			return err
		})
	}
	uid := int64(999)
	passwordEnv := corev1.EnvVar{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}
	one := int32(1)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &one,
			ServiceName: "db-hl",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid},
					Containers: []corev1.Container{{
						Name: "postgres", Image: img, ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{passwordEnv, {Name: "POSTGRES_DB", Value: "app"},
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"}},
						Ports:        []corev1.ContainerPort{{Name: "pg", ContainerPort: 5432}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-U", "postgres", "-h", "127.0.0.1"}}},
							PeriodSeconds: 1, FailureThreshold: 3,
						},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	mustCreate(t, "statefulset", func() error {
		_, err := env.Client.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
		return err
	})
	start := time.Now()
	waitReady(ctx, t, env, ns, 1)
	t.Logf("StatefulSet ready in %s", time.Since(start).Round(time.Millisecond))

	// A Job in another pod writes rows through the Service's DNS name.
	host := fmt.Sprintf("db.%s.svc.cluster.local", ns)
	sql := fmt.Sprintf("CREATE TABLE items(id int PRIMARY KEY, note text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1,%d) g;", rows)
	backoff := int32(3)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "writer"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:   corev1.RestartPolicyNever,
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid},
				Containers: []corev1.Container{{
					Name: "psql", Image: img, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"psql", "-v", "ON_ERROR_STOP=1", "-h", host, "-U", "postgres", "-d", "app", "-c", sql},
					Env:     []corev1.EnvVar{{Name: "PGPASSWORD", ValueFrom: passwordEnv.ValueFrom}, {Name: "PGCONNECT_TIMEOUT", Value: "5"}},
				}},
			}},
		},
	}
	mustCreate(t, "job", func() error {
		_, err := env.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		return err
	})
	poll(ctx, t, "writer Job", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		j, err := env.Client.BatchV1().Jobs(ns).Get(ctx, "writer", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil //nolint:nilerr // API errors while polling are retried
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return false, "", fmt.Errorf("job failed: %s: %s", c.Reason, c.Message)
			}
		}
		return j.Status.Succeeded == 1, fmt.Sprintf("active=%d failed=%d", j.Status.Active, j.Status.Failed), nil
	})

	pvBefore := boundVolume(ctx, t, env, ns)
	scale(ctx, t, env, ns, 0)
	poll(ctx, t, "db-0 to be deleted", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		_, err := env.Client.CoreV1().Pods(ns).Get(ctx, "db-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	scale(ctx, t, env, ns, 1)
	waitReady(ctx, t, env, ns, 1)
	if pvAfter := boundVolume(ctx, t, env, ns); pvAfter != pvBefore {
		t.Fatalf("PVC rebound from %s to %s", pvBefore, pvAfter)
	}

	// exec: the rows survived the scale to zero.
	out, stderr, err := execIn(ctx, env, ns, "db-0", "postgres", nil, "psql", "-U", "postgres", "-d", "app", "-tAc", "SELECT count(*) FROM items")
	if err != nil {
		t.Fatalf("exec psql: %v: %s", err, stderr)
	}
	if got := strings.TrimSpace(out); got != fmt.Sprint(rows) {
		t.Fatalf("rows after scale 0 -> 1 = %q, want %d", got, rows)
	}
	// exec with a small stdin (large stdin is a known limitation; see test/cluster/README.md).
	out, stderr, err = execIn(ctx, env, ns, "db-0", "postgres", strings.NewReader("SELECT max(id) FROM items;\n"), "psql", "-U", "postgres", "-d", "app", "-tA", "-f", "-")
	if err != nil || strings.TrimSpace(out) != fmt.Sprint(rows) {
		t.Fatalf("exec psql with stdin = %q, %v: %s", out, err, stderr)
	}

	// logs
	logs, err := env.Client.CoreV1().Pods(ns).GetLogs("db-0", &corev1.PodLogOptions{Container: "postgres"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if !strings.Contains(string(logs), "database system is ready to accept connections") {
		t.Fatalf("postgres log lacks the ready line:\n%s", logs)
	}

	// port-forward: a real client on this machine reads the rows.
	port := portForward(t, env, ns, "db-0", 5432)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", pw, port))
	if err != nil {
		t.Fatalf("connect through port-forward: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	var note string
	if err := conn.QueryRow(ctx, "SELECT count(*), max(note) FILTER (WHERE id = 7) FROM items").Scan(&n, &note); err != nil {
		t.Fatalf("query through port-forward: %v", err)
	}
	if n != rows || note != "8f14e45fceea167a5a36dedd4bea2543" {
		t.Fatalf("through port-forward: count=%d note(7)=%q", n, note)
	}
}

func mustCreate(t *testing.T, what string, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}

func waitReady(ctx context.Context, t *testing.T, env *cluster.Env, ns string, want int32) {
	t.Helper()
	poll(ctx, t, "StatefulSet db ready", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		s, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil //nolint:nilerr // API errors while polling are retried
		}
		return s.Status.ReadyReplicas == want && s.Status.ObservedGeneration == s.Generation,
			fmt.Sprintf("ready=%d\n%s", s.Status.ReadyReplicas, podDiagnostics(ctx, env, ns)), nil
	})
}

func scale(ctx context.Context, t *testing.T, env *cluster.Env, ns string, n int32) {
	t.Helper()
	sc, err := env.Client.AppsV1().StatefulSets(ns).GetScale(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	sc.Spec.Replicas = n
	if _, err := env.Client.AppsV1().StatefulSets(ns).UpdateScale(ctx, "db", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale to %d: %v", n, err)
	}
}

func boundVolume(ctx context.Context, t *testing.T, env *cluster.Env, ns string) string {
	t.Helper()
	pvc, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-db-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get PVC: %v", err)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("PVC data-db-0 is %s", pvc.Status.Phase)
	}
	return pvc.Spec.VolumeName
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
