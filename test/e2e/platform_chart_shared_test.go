package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// TestPlatformChart_SharedTwoReplicasServeAnApplyWhileOneIsDeleted installs
// charts/unikube-platform in shared mode with two replicas against a real
// PostgreSQL (a StatefulSet in the namespace) and a real S3 (versitygw on
// the node address), behind a NodePort Service the test reaches from the
// host. An apply runs with the agents reaching the platform by its Service
// name; the replica that served the first agent request is deleted
// (`kubectl delete pod`, with its grace period) while the apply goes on.
// The apply must succeed, the Deployment brings a second replica back, and
// the versions and every chunk read back whole through the new replicas.
func TestPlatformChart_SharedTwoReplicasServeAnApplyWhileOneIsDeleted(t *testing.T) {
	env := cluster.Require(t)
	if env.External {
		t.Skip("needs the local cluster harness: pods reach versitygw on the node address")
	}
	image := env.Image("unikube-platform")
	repo, tag, ok := splitImage(image)
	if !ok {
		t.Fatalf("E2E_IMAGE_UNIKUBE_PLATFORM=%q: want repository:tag", image)
	}
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s\n%s", podDiagnostics(context.Background(), env, ns), platformLogs(context.Background(), env, ns, "pf"))
		}
	})

	// The storage: versitygw on the node address, PostgreSQL in the namespace.
	ip, err := clusterfixture.NodeIP(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	s3 := testenv.StartS3With(t, testenv.S3Options{Host: ip})
	s3.CreateBucket(t, "chunks")
	dbPassword := randomHex(12)
	clusterfixture.CreatePostgres(ctx, t, env, ns, clusterfixture.Postgres{Name: "platform-db", Password: dbPassword, Database: "unikube"})
	clusterfixture.WaitReady(ctx, t, env, ns, "app=platform-db", 1)

	// Credentials reach helm in a values file, never on its command line.
	values := map[string]any{
		"image":        map[string]any{"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"},
		"replicaCount": 2,
		"service":      map[string]any{"type": "NodePort"},
		"storage": map[string]any{"mode": "shared", "shared": map[string]any{
			"database": map[string]any{"url": "postgres://postgres@platform-db." + ns + ".svc:5432/unikube?sslmode=disable", "password": dbPassword},
			"blobStore": map[string]any{
				"url":         "s3://chunks/states?endpoint=" + s3.Endpoint + "&region=" + s3.Region,
				"accessKeyId": s3.AccessKey, "secretAccessKey": s3.SecretKey,
			},
		}},
	}
	valuesFile := filepath.Join(t.TempDir(), "values.json")
	b, _ := json.Marshal(values)
	if err := os.WriteFile(valuesFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h := chartHelm{t: t, bin: helmBinary(t), kubeconfig: env.Kubeconfig, home: t.TempDir()}
	chart := filepath.Join("..", "..", "charts", "unikube-platform")
	start := time.Now()
	h.run(ctx, "install", "pf", chart, "--namespace", ns, "--wait", "--timeout", "5m", "-f", valuesFile)
	t.Logf("helm install --wait to ready (shared mode, 2 replicas): %s", time.Since(start).Round(100*time.Millisecond))
	replicas := readyPlatformPods(ctx, t, env, ns, "pf", 2)

	// The test reaches the platform through the NodePort (both replicas
	// behind it, as a load balancer would); the agents by the Service name.
	token := chartAdminToken(ctx, t, env, ns, "pf")
	hostURL := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(nodePort(ctx, t, env, ns, "pf-unikube-platform"))))
	inClusterURL := "http://pf-unikube-platform." + ns + ".svc:8080"
	cl, err := client.New(client.Config{Endpoint: hostURL, Token: token, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := exSeed(ctx, t, cl)
	app := exCreateApp(ctx, t, env, ns)

	// Delete the replica that served the first agent request, while the
	// apply goes on.
	applyDone := make(chan struct{})
	var (
		mu                sync.Mutex
		deleted, servedBy string
		deletedAt         time.Time
	)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		victim, how := replicaServingAnAgent(ctx, env, ns, replicas, applyDone)
		if victim == "" {
			return
		}
		if err := env.Client.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete replica %s: %v", victim, err)
			return
		}
		mu.Lock()
		deleted, servedBy, deletedAt = victim, how, time.Now()
		mu.Unlock()
	}()
	applyStart := time.Now()
	rec, err := executor.Apply(ctx, executor.Options{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: inClusterURL,
		Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop",
		Mappings: exMappings(), Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
	})
	applyEnd := time.Now()
	close(applyDone)
	wg.Wait()
	if err != nil {
		t.Fatalf("apply while a replica was deleted: %v", err)
	}
	if deleted == "" {
		t.Fatal("the apply ended before a replica could be deleted")
	}
	t.Logf("apply took %s; replica %s was deleted %s after it started, having served: %s", applyEnd.Sub(applyStart).Round(100*time.Millisecond),
		deleted, deletedAt.Sub(applyStart).Round(100*time.Millisecond), servedBy)
	if rec.Status != records.StatusApplied || rec.Revision != 1 {
		t.Fatalf("record %+v, want revision 1 applied", rec)
	}
	if got := exClusterSums(ctx, t, env, app); got != v1 {
		t.Errorf("after the apply the app holds\n%+v\nwant v1's\n%+v", got, v1)
	}

	// Two replicas again, one of them new; the state is whole through them.
	after := readyPlatformPods(ctx, t, env, ns, "pf", 2)
	if after[0] == deleted || after[1] == deleted {
		t.Fatalf("the deleted replica %s is still serving: %v", deleted, after)
	}
	versions, err := cl.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{})
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions of shop/seed after the deletion: %+v, %v; want v1 and v2", versions, err)
	}
	for _, tag := range []string{"v1", "v2"} {
		// Twice: the NodePort may pick either replica each time.
		for range 2 {
			m, _, err := cl.GetManifest(ctx, "shop", "seed", tag)
			if err != nil {
				t.Fatalf("read %s back: %v", tag, err)
			}
			if _, err := cl.DownloadChunks(ctx, "shop", "seed", m, statepkg.NewMemoryStore(), client.TransferOptions{}); err != nil {
				t.Errorf("download every chunk of %s from S3 through the replicas: %v", tag, err)
			}
		}
	}
}

// replicaServingAnAgent waits until a platform replica logs a request
// made with a job token (an agent's: the apply's first is the preflight
// agent reading the manifest) and returns it with that log line. It
// returns "" when done closes first.
func replicaServingAnAgent(ctx context.Context, env *cluster.Env, ns string, replicas []string, done <-chan struct{}) (string, string) {
	for {
		select {
		case <-done:
			return "", ""
		case <-ctx.Done():
			return "", ""
		case <-time.After(250 * time.Millisecond):
		}
		for _, r := range replicas {
			logs, err := env.Client.CoreV1().Pods(ns).GetLogs(r, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(logs), "\n") {
				if strings.Contains(line, `"principal":"job:`) {
					return r, line
				}
			}
		}
	}
}

// readyPlatformPods waits until release's platform has exactly n ready pods
// (none terminating) and returns their names.
func readyPlatformPods(ctx context.Context, t *testing.T, env *cluster.Env, ns, release string, n int) []string {
	t.Helper()
	var names []string
	poll(ctx, t, fmt.Sprintf("%d ready platform pods", n), 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release + ",app.kubernetes.io/name=unikube-platform"})
		if err != nil {
			return false, err.Error(), nil //nolint:nilerr // retried
		}
		names = names[:0]
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false, p.Name + " is terminating", nil
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					names = append(names, p.Name)
				}
			}
		}
		return len(names) == n && len(pods.Items) == n, fmt.Sprintf("%d of %d pods ready", len(names), len(pods.Items)), nil
	})
	return names
}

// chartAdminToken reads the admin token the chart generated.
func chartAdminToken(ctx context.Context, t *testing.T, env *cluster.Env, ns, release string) string {
	t.Helper()
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, release+"-unikube-platform", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's keys Secret: %v", err)
	}
	token := string(s.Data["admin-token"])
	if len(token) < 32 {
		t.Fatalf("the chart generated an admin token of %d bytes", len(token))
	}
	return token
}

// nodePort is the node port of a NodePort Service's first port.
func nodePort(ctx context.Context, t *testing.T, env *cluster.Env, ns, name string) int32 {
	t.Helper()
	svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("service %s is %s without a node port", name, svc.Spec.Type)
	}
	return svc.Spec.Ports[0].NodePort
}

// platformLogs is the tail of each platform pod's log, for failures.
func platformLogs(ctx context.Context, env *cluster.Env, ns, release string) string {
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	tail := int64(40)
	for _, p := range pods.Items {
		logs, err := env.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- %s (%v)\n%s\n", p.Name, err, logs)
	}
	return b.String()
}
