// Package clusterfixture sets up what the tests on the shared cluster apply
// states and run scripts into: the real platform server listening on the
// node's address (so agent and script pods reach it at the same URL as the
// test), a PostgreSQL StatefulSet, plain Deployments and Services, and
// waiting for their pods. It is shared by test/e2e and the provider's
// acceptance tests, so both exercise the same app.
package clusterfixture

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// SecretKey seals sensitive script variable defaults on the test platform
// (a fixed test key: the data dir is temporary).
const SecretKey = "dGVzdC1vbmx5LXNlY3JldC1rZXktMzItYnl0ZXMhISE="

// Platform is a running platform server the cluster's pods can reach.
type Platform struct {
	URL        string
	AdminToken string
	// DataDir is the server's data directory; its blobs are under
	// chunks/sha256/<2 hex>/<hex>.
	DataDir string
	Admin   *client.Client
	// CACertificate is the PEM of the private CA that signed the
	// platform's certificate (StartPlatformTLS), nil over plain HTTP.
	CACertificate []byte
}

// StartPlatform runs the real platform server until the test ends,
// listening on the first node's InternalIP. It skips the test on an
// external cluster (KUBECONFIG_E2E), whose pods cannot reach this machine.
func StartPlatform(t testing.TB, env *cluster.Env, adminToken string) *Platform {
	t.Helper()
	return StartPlatformWrapped(t, env, adminToken, nil)
}

// StartPlatformWrapped is StartPlatform with the server's handler wrapped
// by wrap (nil: unwrapped), so a test can act at a known point of a
// transfer, e.g. while an agent waits for its chunks.
func StartPlatformWrapped(t testing.TB, env *cluster.Env, adminToken string, wrap func(http.Handler) http.Handler) *Platform {
	t.Helper()
	return startPlatform(t, env, adminToken, wrap, nil)
}

// StartPlatformTLS is StartPlatform serving HTTPS with a certificate for
// the node's address signed by ca, a private CA no system trusts: agents
// reach it only when given ca's certificate. Admin trusts ca.
func StartPlatformTLS(t testing.TB, env *cluster.Env, adminToken string, ca *testenv.CA) *Platform {
	t.Helper()
	return startPlatform(t, env, adminToken, nil, ca)
}

func startPlatform(t testing.TB, env *cluster.Env, adminToken string, wrap func(http.Handler) http.Handler, ca *testenv.CA) *Platform {
	t.Helper()
	if env.External {
		t.Skip("needs the local cluster harness: pods reach the platform on the node address")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ip, err := NodeIP(ctx, env)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	so := server.Options{DataDir: dataDir, AdminToken: adminToken, SecretKey: SecretKey, Getenv: func(string) string { return "" }}
	scheme := "http://"
	var caPEM []byte
	if ca != nil {
		so.TLSCert, so.TLSKey = ca.Issue(t, ip)
		scheme, caPEM = "https://", ca.CertPEM
	}
	srv, err := server.New(ctx, so)
	if err != nil {
		cancel()
		t.Fatalf("platform: %v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		cancel()
		srv.Close()
		t.Fatalf("listen on the node address %s: %v", ip, err)
	}
	done := make(chan error, 1)
	if wrap == nil {
		go func() { done <- srv.Serve(ctx, ln) }()
	} else {
		hs := &http.Server{Handler: wrap(srv.Handler()), ReadHeaderTimeout: 30 * time.Second}
		go func() { done <- hs.Serve(ln) }()
		go func() {
			<-ctx.Done()
			_ = hs.Close()
		}()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(35 * time.Second):
			t.Errorf("platform did not stop")
		}
		srv.Close()
	})
	url := scheme + ln.Addr().String()
	admin, err := client.New(client.Config{Endpoint: url, Token: adminToken, CACertificate: caPEM, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("platform client: %v", err)
	}
	return &Platform{URL: url, AdminToken: adminToken, DataDir: dataDir, Admin: admin, CACertificate: caPEM}
}

// NodeIP is the first node's InternalIP: the address on this machine that
// pods reach.
func NodeIP(ctx context.Context, env *cluster.Env) (string, error) {
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	if len(nodes.Items) == 0 {
		return "", fmt.Errorf("the cluster has no nodes")
	}
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, nil
		}
	}
	return "", fmt.Errorf("node %s has no InternalIP", nodes.Items[0].Name)
}

// Postgres is a PostgreSQL StatefulSet of one replica with a PVC, the
// Secret holding its password and a Service, all called Name.
type Postgres struct {
	Name string
	// Labels of the pods (and the selector, Secret and Service); default
	// app=Name.
	Labels map[string]string
	// Container is the database container's name; default "postgres".
	Container string
	Password  string
	// Database is POSTGRES_DB; default "app".
	Database string
}

// uid is the user the test workloads run as (the postgres image's).
const uid = int64(999)

// CreatePostgres creates p in ns; WaitReady waits for it.
func CreatePostgres(ctx context.Context, t testing.TB, env *cluster.Env, ns string, p Postgres) {
	t.Helper()
	labels := p.Labels
	if labels == nil {
		labels = map[string]string{"app": p.Name}
	}
	container, db := p.Container, p.Database
	if container == "" {
		container = "postgres"
	}
	if db == "" {
		db = "app"
	}
	_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: labels},
		StringData: map[string]string{"password": p.Password}}, metav1.CreateOptions{})
	must(t, "secret "+p.Name, err)
	CreateService(ctx, t, env, ns, p.Name, labels, 5432)
	id, one := uid, int32(1)
	_, err = env.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one, ServiceName: p.Name, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: &id, RunAsGroup: &id, FSGroup: &id},
					Containers: []corev1.Container{{
						Name: container, Image: env.Image("postgres"), ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: p.Name}, Key: "password"}}},
							{Name: "POSTGRES_DB", Value: db},
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
						},
						Ports:        []corev1.ContainerPort{{ContainerPort: 5432}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
							Command: []string{"pg_isready", "-U", "postgres", "-h", "127.0.0.1"}}},
							// Tolerant: on a loaded CI node a slow or flapping probe
							// would take the Service's only endpoint away mid-test.
							PeriodSeconds: 1, TimeoutSeconds: 10, FailureThreshold: 30},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: ClaimSpec()}},
		},
	}, metav1.CreateOptions{})
	must(t, "statefulset "+p.Name, err)
}

// ClaimSpec is a 1Gi ReadWriteOnce claim of the default storage class.
func ClaimSpec() corev1.PersistentVolumeClaimSpec {
	return corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}
}

// CreatePVC creates a ClaimSpec claim called name.
func CreatePVC(ctx context.Context, t testing.TB, env *cluster.Env, ns, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: ClaimSpec()}, metav1.CreateOptions{})
	must(t, "pvc "+name, err)
}

// CreateService creates a Service called name selecting labels on port.
func CreateService(ctx context.Context, t testing.TB, env *cluster.Env, ns, name string, labels map[string]string, port int32) {
	t.Helper()
	_, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port)}}}},
		metav1.CreateOptions{})
	must(t, "service "+name, err)
}

// CreateDeployment creates a Deployment of one replica called name whose
// pods are labelled app=name plus labels. It is recreated, never rolled,
// so a ReadWriteOnce volume is never wanted by two pods.
func CreateDeployment(ctx context.Context, t testing.TB, env *cluster.Env, ns, name string, labels map[string]string, spec corev1.PodSpec) {
	t.Helper()
	l := map[string]string{"app": name}
	for k, v := range labels {
		l[k] = v
	}
	one := int32(1)
	_, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: spec}},
	}, metav1.CreateOptions{})
	must(t, "deployment "+name, err)
}

// Busybox is the pod spec of a busybox container running script with sh,
// as the workloads' user, stopped within a second.
func Busybox(env *cluster.Env, script string) corev1.PodSpec {
	id, grace := uid, int64(1)
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		SecurityContext:               &corev1.PodSecurityContext{RunAsUser: &id, RunAsGroup: &id, FSGroup: &id},
		Containers: []corev1.Container{{Name: "web", Image: env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sh", "-c", script}}},
	}
}

// WaitReady waits until exactly n pods of selector exist and are ready,
// failing the test with the pods' states after 3 minutes.
func WaitReady(ctx context.Context, t testing.TB, env *cluster.Env, ns, selector string, n int) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
			return false, nil //nolint:nilerr // a transient API error: poll again
		}
		ready := 0
		var states []string
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
			states = append(states, podState(p))
		}
		last = fmt.Sprintf("%d/%d ready: %s", ready, len(pods.Items), strings.Join(states, "; "))
		return ready == n && len(pods.Items) == n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d ready pods %s in %s: %v (last: %s)", n, selector, ns, err, last)
	}
}

// podState is a pod's phase and its containers' waiting or terminated
// reasons, for failure messages.
func podState(p corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s %s", p.Name, p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			fmt.Fprintf(&b, " [%s waiting: %s %s]", cs.Name, w.Reason, w.Message)
		}
		if x := cs.State.Terminated; x != nil {
			fmt.Fprintf(&b, " [%s terminated: %s exit %d]", cs.Name, x.Reason, x.ExitCode)
		}
	}
	return b.String()
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}
