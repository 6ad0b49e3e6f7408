package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestPlatformChart_EmbeddedInstallServesAndUpgradeKeepsEverything installs
// charts/unikube-platform in embedded mode with `helm install --wait`,
// reaches the platform by its Service name from a pod (as agents do), stores
// a project and a script with a sealed default through the generated admin
// token, then `helm upgrade`s (a new pod through Recreate) and finds the
// same admin token, secret key, project and script.
//
// The image is the release image the harness builds with `make images`'
// code, pulled from the cluster's registry; E2E_IMAGE_UNIKUBE_PLATFORM names
// another.
func TestPlatformChart_EmbeddedInstallServesAndUpgradeKeepsEverything(t *testing.T) {
	env := cluster.Require(t)
	image := env.Image("unikube-platform")
	repo, tag, ok := splitImage(image)
	if !ok {
		t.Fatalf("E2E_IMAGE_UNIKUBE_PLATFORM=%q: want repository:tag", image)
	}
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	h := chartHelm{t: t, bin: helmBinary(t), kubeconfig: env.Kubeconfig, home: t.TempDir()}
	chart := filepath.Join("..", "..", "charts", "unikube-platform")
	start := time.Now()
	h.run(ctx, "install", "pf", chart, "--namespace", ns, "--wait", "--timeout", "5m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=IfNotPresent",
		"--set", "storage.embedded.persistence.size=1Gi", "--set", "storage.embedded.persistence.keep=false")
	t.Logf("helm install --wait to ready: %s", time.Since(start).Round(100*time.Millisecond))

	keys := func() map[string][]byte {
		s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "pf-unikube-platform", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the chart's keys Secret: %v", err)
		}
		return s.Data
	}
	before := keys()
	token := string(before["admin-token"])
	if len(token) < 32 || len(before["secret-key"]) == 0 {
		t.Fatalf("the chart did not generate an admin token and a secret key: %d/%d bytes", len(token), len(before["secret-key"]))
	}

	// An agent's view: the Service name from inside the cluster, the token
	// from a Secret in the environment (never on a command line).
	svcURL := "http://pf-unikube-platform." + ns + ".svc:8080"
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(65532)), RunAsNonRoot: ptrTo(true)},
			Containers: []corev1.Container{{
				Name: "probe", Image: env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
				Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "pf-unikube-platform"}, Key: "admin-token"}}}},
			}},
		},
	}
	mustCreate(t, "probe pod", func() error {
		_, err := env.Client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{})
		return err
	})
	inCluster := func(path string) string {
		var out string
		poll(ctx, t, "GET "+svcURL+path+" from a pod", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
			o, stderr, err := execIn(ctx, env, ns, "probe", "probe", nil, "sh", "-c", `wget -q -O - --header "Authorization: Bearer $TOKEN" "$0"`, svcURL+path)
			if err != nil {
				return false, err.Error() + ": " + stderr, nil //nolint:nilerr // the pod may still be starting
			}
			out = o
			return true, o, nil
		})
		return out
	}
	inCluster("/readyz") // wget fails on any answer but 2xx

	admin := func() *client.Client {
		port := portForward(t, env, ns, platformPod(ctx, t, env, ns), 8080)
		c, err := client.New(client.Config{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := admin()
	if _, err := c.CreateProject(ctx, "shop", "kept across upgrades"); err != nil {
		t.Fatalf("create a project with the chart's admin token: %v", err)
	}
	spec := client.ScriptSpec{Interpreter: "sh", Body: "echo hi", Variables: []client.Variable{{Name: "PASSWORD", Sensitive: true, Default: "sealed-" + randomHex(4)}}}
	if _, err := c.PutScript(ctx, "shop", "seed", spec); err != nil {
		t.Fatalf("a sensitive script default is refused; the chart's secret key did not reach the server: %v", err)
	}
	if got := inCluster("/api/v1/projects"); !strings.Contains(got, `"shop"`) {
		t.Errorf("the project list through the Service does not show shop: %s", got)
	}

	// A new pod: Recreate releases the volume, the new pod mounts it.
	old := platformPod(ctx, t, env, ns)
	h.run(ctx, "upgrade", "pf", chart, "--namespace", ns, "--wait", "--timeout", "5m", "--reuse-values", "--set", "config.logLevel=debug")
	if now := platformPod(ctx, t, env, ns); now == old {
		t.Fatalf("helm upgrade did not replace the pod %s", old)
	}
	after := keys()
	if !bytes.Equal(after["admin-token"], before["admin-token"]) || !bytes.Equal(after["secret-key"], before["secret-key"]) {
		t.Fatal("helm upgrade changed the generated admin token or secret key")
	}
	c = admin()
	if p, err := c.GetProject(ctx, "shop"); err != nil || p.Description != "kept across upgrades" {
		t.Errorf("after the upgrade the project is %+v, %v", p, err)
	}
	sc, err := c.GetScript(ctx, "shop", "seed")
	if err != nil || len(sc.Variables) != 1 || !sc.Variables[0].DefaultSet {
		t.Errorf("after the upgrade the script's sealed default is gone: %+v, %v", sc, err)
	}
}

// platformPod is the running, ready platform pod of release pf.
func platformPod(ctx context.Context, t *testing.T, env *cluster.Env, ns string) string {
	t.Helper()
	var name string
	poll(ctx, t, "one ready platform pod", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=pf,app.kubernetes.io/name=unikube-platform"})
		if err != nil {
			return false, err.Error(), nil //nolint:nilerr // retried
		}
		var ready []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready = append(ready, p.Name)
				}
			}
		}
		if len(ready) != 1 {
			return false, fmt.Sprintf("%d ready pods", len(ready)), nil
		}
		name = ready[0]
		return true, "", nil
	})
	return name
}

func splitImage(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// chartHelm runs the helm CLI against the test cluster, away from the
// user's own helm configuration.
type chartHelm struct {
	t               *testing.T
	bin, kubeconfig string
	home            string
}

func (h chartHelm) run(ctx context.Context, args ...string) {
	h.t.Helper()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.kubeconfig, "HELM_CONFIG_HOME="+h.home, "HELM_CACHE_HOME="+h.home, "HELM_DATA_HOME="+h.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
