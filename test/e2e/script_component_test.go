package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// A static site has no built-in driver: its files are a `script`
// component whose script (examples/scripts/volume-init-files.sh) copies
// them from /unikube/data onto the site's volume.
func TestScriptComponent_RestoresAStaticSiteWithoutADriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	cs := s.env.Client

	// The site: busybox httpd serving a PVC.
	uid := int64(65532)
	if _, err := cs.CoreV1().PersistentVolumeClaims(s.ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "site"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Mi")}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	labels := map[string]string{"app": "site"}
	if _, err := cs.AppsV1().Deployments(s.ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "site"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: ptrTo(true)},
				Containers: []corev1.Container{{Name: "httpd", Image: s.env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
					Command:      []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
					VolumeMounts: []corev1.VolumeMount{{Name: "www", MountPath: "/www"}}}},
				Volumes: []corev1.Volume{{Name: "www", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "site"}}}},
			}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	s.put(ctx, t, "site-files", client.ScriptSpec{Interpreter: "sh", Image: s.env.Image("busybox"), Body: example(t, "volume-init-files.sh"),
		Variables: []client.Variable{{Name: "DIRS", Default: "uploads cache"}, {Name: "MODE", Default: "775"}, {Name: "MARKER", Default: ".initialised"}}})

	// The version: the site's files captured from a directory (a tar
	// stream with a file index), as a `script` component naming the script.
	dir := t.TempDir()
	files := map[string]string{
		"index.html":       "<h1>Shop</h1>\n",
		"css/site.css":     "body { color: teal }\n",
		"img/logo.svg":     strings.Repeat("<svg/>", 1000),
		"about/index.html": "about us, v1\n",
	}
	for p, c := range files {
		_ = os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.cl.CreateState(ctx, "scripts", "site", ""); err != nil {
		t.Fatal(err)
	}
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: "www", URL: "file://" + dir}}, s.cl.Chunks("scripts", "site"), capture.Spec{State: "scripts/site"})
	if err != nil {
		t.Fatal(err)
	}
	// Only volume components carry a file index; the stream stays a tar.
	m.Components[0].Kind, m.Components[0].Files = statepkg.KindScript, nil
	m.Components[0].Meta = map[string]string{executor.ScriptMetaKey: "scripts/site-files", executor.ScriptVarPrefix + "DIRS": "uploads cache/thumbs"}
	if _, err := s.cl.CommitVersion(ctx, "scripts", "site", "v1", m); err != nil {
		t.Fatal(err)
	}

	ref, err := statepkg.ParseRef("scripts/site:v1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec, err := executor.Apply(ctx, executor.Options{Client: cs, Namespace: s.ns, Platform: s.cl, PlatformURL: s.url, Ref: ref, Release: "site",
		Mappings: []discovery.Mapping{{Component: "www", PVC: "site", Options: map[string]string{"var.MODE": "770"}}},
		Timeout:  3 * time.Minute, AgentImage: s.env.Image("unikube-agent")})
	t.Logf("apply took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, podDiagnostics(ctx, s.env, s.ns))
	}
	if rec.Status != records.StatusApplied || len(rec.Components) != 1 || rec.Components[0].Kind != "script" {
		t.Errorf("record: %+v", rec)
	}
	run := s.onlyRun(ctx, t, "site-files")
	if run.Status != client.RunSucceeded || !strings.Contains(run.LogTail, "copied 4 files") || !strings.Contains(run.Target, "component www of scripts/site@sha256:") {
		t.Errorf("run: %+v", run)
	}

	// Verified through the site itself.
	exWaitReady(ctx, t, s.env, s.ns, "app=site", 1)
	pod := exPod(ctx, t, s.env, s.ns, "app=site")
	for p, want := range files {
		got, errOut, err := execIn(ctx, s.env, s.ns, pod, "httpd", nil, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"+p)
		if err != nil || got != want {
			t.Errorf("GET /%s = %q (%v %s), want %q", p, got, err, errOut, want)
		}
	}
	ls, _, err := execIn(ctx, s.env, s.ns, pod, "httpd", nil, "sh", "-c", "stat -c '%n %a' /www/uploads /www/cache/thumbs && test -s /www/.initialised && echo marker")
	if err != nil || !strings.Contains(ls, "/www/uploads 770") || !strings.Contains(ls, "/www/cache/thumbs 770") || !strings.Contains(ls, "marker") {
		t.Errorf("initial directories: %q %v", ls, err)
	}
}

// TestScripts_RunInANamespaceWhoseQuotaDemandsRequestsAndLimits: in a
// namespace whose ResourceQuota demands cpu/memory requests and limits and
// whose LimitRange sets no default limits (a pod without its own is
// refused), a script run on its own is admitted (default resources), and a
// `script` component serving a workload runs placed like it (its pull
// secret, its toleration) and writes the data onto its volume.
func TestScripts_RunInANamespaceWhoseQuotaDemandsRequestsAndLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	cs := s.env.Client
	if _, err := cs.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"registry.invalid":{"auth":"ZTJlOmUyZQ=="}}}`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := restrictedWeb(s.env, 999)
	web.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	web.Tolerations = []corev1.Toleration{{Key: "unikube.dev/dedicated", Operator: corev1.TolerationOpEqual, Value: "data", Effect: corev1.TaintEffectNoSchedule}}
	clusterfixture.CreatePVC(ctx, t, s.env, s.ns, "uploads")
	clusterfixture.CreateDeployment(ctx, t, s.env, s.ns, "web", nil, web)
	exWaitReady(ctx, t, s.env, s.ns, "app=web", 1)

	q := resource.MustParse
	if _, err := cs.CoreV1().LimitRanges(s.ns).Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Min: corev1.ResourceList{corev1.ResourceCPU: q("10m"), corev1.ResourceMemory: q("16Mi")},
		}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ResourceQuotas(s.ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU: q("2"), corev1.ResourceRequestsMemory: q("2Gi"),
			corev1.ResourceLimitsCPU: q("4"), corev1.ResourceLimitsMemory: q("4Gi"),
		}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "quota usage computed", time.Minute, func(ctx context.Context) (bool, string, error) {
		rq, err := cs.CoreV1().ResourceQuotas(s.ns).Get(ctx, "quota", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return len(rq.Status.Used) > 0, fmt.Sprint(rq.Status), nil
	})
	pods := agentPods(ctx, t, s.env, s.ns)

	// On its own, serving no workload.
	s.put(ctx, t, "hello", client.ScriptSpec{Interpreter: "sh", Image: s.env.Image("busybox"), Body: "echo hello from $UNIKUBE_NAMESPACE\n"})
	if _, err := scriptrun.Run(ctx, scriptrun.Options{Client: cs, Platform: s.cl, Namespace: s.ns, Script: "scripts/hello", Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("script run: %v\n%s", err, podDiagnostics(ctx, s.env, s.ns))
	}

	// A component serving Deployment/web, writing onto its volume.
	s.put(ctx, t, "copy-in", client.ScriptSpec{Interpreter: "sh", Image: s.env.Image("busybox"),
		Body: "cp -R \"$UNIKUBE_DATA\"/. \"$UNIKUBE_TARGET\"/ && echo copied\n"})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("quota admits scripts\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cl.CreateState(ctx, "scripts", "files", ""); err != nil {
		t.Fatal(err)
	}
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: "files", URL: "file://" + dir}}, s.cl.Chunks("scripts", "files"), capture.Spec{State: "scripts/files"})
	if err != nil {
		t.Fatal(err)
	}
	m.Components[0].Kind, m.Components[0].Files = statepkg.KindScript, nil
	m.Components[0].Meta = map[string]string{executor.ScriptMetaKey: "scripts/copy-in"}
	if _, err := s.cl.CommitVersion(ctx, "scripts", "files", "v1", m); err != nil {
		t.Fatal(err)
	}
	own, err := jobs.ParseResources("cpu=150m,memory=192Mi")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := executor.Apply(ctx, executor.Options{Client: cs, Namespace: s.ns, Platform: s.cl, PlatformURL: s.url,
		Ref: statepkg.Ref{Project: "scripts", State: "files", Tag: "v1"}, Release: "files",
		Mappings: []discovery.Mapping{{Component: "files", Workload: "Deployment/web", PVC: "uploads", Resources: own}},
		Timeout:  3 * time.Minute, AgentImage: s.env.Image("unikube-agent")}); err != nil {
		t.Fatalf("apply: %v\n%s", err, podDiagnostics(ctx, s.env, s.ns))
	}
	pod := exPod(ctx, t, s.env, s.ns, "app=web")
	if got, errOut, err := execIn(ctx, s.env, s.ns, pod, "web", nil, "cat", "/uploads/hello.txt"); err != nil || got != "quota admits scripts\n" {
		t.Errorf("restored file: %q (%v %s)", got, err, errOut)
	}

	var sawPlain, sawPlaced bool
	for _, p := range pods() {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Resources.Limits.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("pod %s container %s has no requests/limits: %+v", p.Name, c.Name, c.Resources)
			}
		}
		switch p.Labels[scriptrun.LabelScript] {
		case "hello":
			sawPlain = len(p.Spec.ImagePullSecrets) == 0
		case "copy-in":
			tol := false
			for _, t := range p.Spec.Tolerations {
				tol = tol || t.Key == "unikube.dev/dedicated"
			}
			main := p.Spec.Containers[0].Resources
			sawPlaced = tol && len(p.Spec.ImagePullSecrets) == 1 && p.Spec.ImagePullSecrets[0].Name == "regcred" &&
				main.Requests.Cpu().String() == "150m" && main.Limits.Memory().String() == "192Mi"
			if !sawPlaced {
				t.Errorf("script component pod %s: pull secrets %v tolerations %v resources %+v, want the workload's and the mapping's",
					p.Name, p.Spec.ImagePullSecrets, p.Spec.Tolerations, main)
			}
		}
	}
	if !sawPlain || !sawPlaced {
		t.Errorf("saw the plain script's pod %v, the component's placed pod %v (pods: %d)", sawPlain, sawPlaced, len(pods()))
	}
}
