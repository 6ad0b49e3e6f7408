package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// Agent pods that fit the namespace: quotas, placement and uids of the
// workload they serve.

// fitSeed commits fit/seed:v1 with a volume component "files" (and a
// PostgreSQL component "db" when withDB) and returns the files' checksums
// as exPodFilesSum reports them and the database's checksum.
func fitSeed(ctx context.Context, t *testing.T, cl *client.Client, withDB bool) (files, pg string) {
	t.Helper()
	if _, err := cl.CreateProject(ctx, "fit", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "fit", "seed", ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := range 5 {
		p := filepath.Join(dir, "img", fmt.Sprintf("%02d.bin", i))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("fit %d ", i), 500*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srcs := []capture.Source{{Name: "files", URL: "file://" + dir}}
	var pgURL string
	if withDB {
		p := testenv.StartPostgres(t)
		p.CreateDatabase(t, "src")
		pgURL = p.URL("src")
		exPgExec(ctx, t, pgURL, `CREATE TABLE items (id int PRIMARY KEY, name text)`,
			`INSERT INTO items SELECT g, 'item-' || g FROM generate_series(1, 2000) g`)
		srcs = append(srcs, capture.Source{Name: "db", URL: pgURL})
	}
	m, _, err := capture.Capture(ctx, srcs, cl.Chunks("fit", "seed"), capture.Spec{State: "fit/seed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CommitVersion(ctx, "fit", "seed", "v1", m); err != nil {
		t.Fatal(err)
	}
	if withDB {
		pg = exPgSum(ctx, t, pgURL)
	}
	return exLocalFilesSum(t, dir), pg
}

// restrictedWeb is the pod spec of the app "web": busybox writing to the
// PVC uploads mounted at /uploads, meeting the restricted Pod Security
// Standard, with requests and limits (a quota demanding them admits it
// when it is scaled back).
func restrictedWeb(env *cluster.Env, uid int64) corev1.PodSpec {
	grace := int64(1)
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, FSGroup: &uid, RunAsNonRoot: fitPtr(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "web", Image: env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
			Command:   []string{"sh", "-c", "mkdir -p /uploads/live && while true; do date > /uploads/live/heartbeat; sleep 1; done"},
			Resources: res,
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: fitPtr(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "uploads", MountPath: "/uploads"}}}},
		Volumes: []corev1.Volume{{Name: "uploads", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "uploads"}}}},
	}
}

// enforceRestricted makes the namespace reject every new pod that does not
// meet the restricted Pod Security Standard.
func enforceRestricted(ctx context.Context, t *testing.T, env *cluster.Env, ns string) {
	t.Helper()
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`)
	if _, err := env.Client.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// agentPods records the agent pods created in ns while the test runs (the
// executor deletes their Jobs when they succeed).
func agentPods(ctx context.Context, t *testing.T, env *cluster.Env, ns string) func() []corev1.Pod {
	t.Helper()
	w, err := env.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: jobs.LabelManagedBy + "=" + jobs.ManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]corev1.Pod{}
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[p.Name] = *p
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.Stop)
	return func() []corev1.Pod {
		mu.Lock()
		defer mu.Unlock()
		out := make([]corev1.Pod, 0, len(seen))
		for _, p := range seen {
			out = append(out, p)
		}
		return out
	}
}

func fitApply(ctx context.Context, t *testing.T, env *cluster.Env, cl *client.Client, platformURL, ns string, ms []discovery.Mapping) {
	t.Helper()
	start := time.Now()
	rec, err := executor.Apply(ctx, executor.Options{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "fit", State: "seed", Tag: "v1"}, Release: "fit",
		Mappings: ms, Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
		// Without the fix, the agent pod is never admitted: fail in minutes, not at the 1h default.
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, podDiagnostics(context.Background(), env, ns))
	}
	t.Logf("applied in %s: %+v", time.Since(start).Round(time.Millisecond), rec.Components)
}

// TestExecutor_ApplyInANamespaceWhoseQuotaDemandsRequestsAndLimits: a
// namespace with a ResourceQuota on cpu and memory requests and limits and
// a LimitRange that defaults requests but no limits (so a pod without its
// own limits is refused) admits the agent pods of an apply: a database Job
// (the agent copied in by an init container) with the default resources
// and a volume Job with the component's own; the data is restored.
func TestExecutor_ApplyInANamespaceWhoseQuotaDemandsRequestsAndLimits(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wantFiles, wantPG := fitSeed(ctx, t, cl, true)
	password := "pw-" + strings.TrimPrefix(ns, "e2e-")
	clusterfixture.CreatePostgres(ctx, t, env, ns, clusterfixture.Postgres{Name: "db", Password: password})
	clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, restrictedWeb(env, 999))
	exWaitReady(ctx, t, env, ns, "app=db", 1)
	exWaitReady(ctx, t, env, ns, "app=web", 1)

	// From here on every new pod needs requests and limits.
	q := func(s string) resource.Quantity { return resource.MustParse(s) }
	if _, err := env.Client.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Min: corev1.ResourceList{corev1.ResourceCPU: q("10m"), corev1.ResourceMemory: q("16Mi")},
		}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU: q("2"), corev1.ResourceRequestsMemory: q("2Gi"),
			corev1.ResourceLimitsCPU: q("4"), corev1.ResourceLimitsMemory: q("4Gi"), corev1.ResourcePods: q("10"),
		}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	enforceRestricted(ctx, t, env, ns)
	// The quota controller must have computed the usage before pods are admitted against it.
	poll(ctx, t, "quota usage computed", time.Minute, func(ctx context.Context) (bool, string, error) {
		rq, err := env.Client.CoreV1().ResourceQuotas(ns).Get(ctx, "quota", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return len(rq.Status.Used) > 0, fmt.Sprint(rq.Status), nil
	})
	pods := agentPods(ctx, t, env, ns)

	own, err := jobs.ParseResources("cpu=200m,memory=256Mi")
	if err != nil {
		t.Fatal(err)
	}
	fitApply(ctx, t, env, cl, platformURL, ns, []discovery.Mapping{
		{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
		{Component: "files", Workload: "Deployment/web", Resources: own},
	})
	if got := exPodFilesSum(ctx, t, env, ns); got != wantFiles {
		t.Errorf("files\n%s\nwant\n%s", got, wantFiles)
	}
	dbPort := portForward(t, env, ns, exPod(ctx, t, env, ns, "app=db"), 5432)
	if got := exPgSum(ctx, t, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", password, dbPort)); got != wantPG {
		t.Errorf("postgres %s, want %s", got, wantPG)
	}
	var sawOwn, sawInit bool
	for _, p := range pods() {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("pod %s container %s has no cpu/memory limits: %+v", p.Name, c.Name, c.Resources)
			}
			if c.Resources.Requests.Cpu().String() == "200m" && c.Resources.Limits.Memory().String() == "256Mi" {
				sawOwn = true
			}
		}
		sawInit = sawInit || len(p.Spec.InitContainers) > 0
	}
	if !sawOwn || !sawInit {
		t.Errorf("agent pods %d: saw the files component's own resources %v, a database Job with an init container %v", len(pods()), sawOwn, sawInit)
	}
}

// TestExecutor_AgentPodFollowsTheWorkloadsPlacement: a workload with image
// pull secrets (its own and its ServiceAccount's), a node selector and node affinity (matching the node), a
// toleration and a priority class: the agent pod carries them all, and the
// apply works. (That the pull secret authenticates a pull is proven
// against the authenticated in-cluster registry elsewhere.)
func TestExecutor_AgentPodFollowsTheWorkloadsPlacement(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wantFiles, _ := fitSeed(ctx, t, cl, false)
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	host := nodes.Items[0].Labels["kubernetes.io/hostname"]
	pc := "e2e-" + strings.TrimPrefix(ns, "e2e-") + "-data"
	if _, err := env.Client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: pc}, Value: 1000, Description: "e2e: agent pods follow the workload's priority"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.SchedulingV1().PriorityClasses().Delete(context.Background(), pc, metav1.DeleteOptions{})
	})
	for _, name := range []string{"regcred", "sa-regcred"} {
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
			Type:       corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"registry.invalid":{"auth":"ZTJlOmUyZQ=="}}}`}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The workload's ServiceAccount carries a pull secret of its own, which
	// admission adds to the workload's pods but not to the agent's.
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-regcred"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := restrictedWeb(env, 999)
	web.ServiceAccountName = "web"
	web.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	web.NodeSelector = map[string]string{"kubernetes.io/hostname": host}
	web.Tolerations = []corev1.Toleration{{Key: "unikube.dev/dedicated", Operator: corev1.TolerationOpEqual, Value: "data", Effect: corev1.TaintEffectNoSchedule}}
	web.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}}}}}}}}
	web.PriorityClassName = pc
	clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, web)
	exWaitReady(ctx, t, env, ns, "app=web", 1)
	enforceRestricted(ctx, t, env, ns)
	pods := agentPods(ctx, t, env, ns)

	fitApply(ctx, t, env, cl, platformURL, ns, []discovery.Mapping{{Component: "files", Workload: "Deployment/web"}})
	if got := exPodFilesSum(ctx, t, env, ns); got != wantFiles {
		t.Errorf("files\n%s\nwant\n%s", got, wantFiles)
	}
	ps := pods()
	if len(ps) == 0 {
		t.Fatal("saw no agent pod")
	}
	for _, p := range ps {
		s := p.Spec
		if len(s.ImagePullSecrets) != 2 || s.ImagePullSecrets[0].Name != "regcred" || s.ImagePullSecrets[1].Name != "sa-regcred" {
			t.Errorf("pod %s imagePullSecrets %v, want regcred (the workload's) and sa-regcred (its ServiceAccount's)", p.Name, s.ImagePullSecrets)
		}
		if s.NodeSelector["kubernetes.io/hostname"] != host {
			t.Errorf("pod %s nodeSelector %v", p.Name, s.NodeSelector)
		}
		found := false
		for _, tol := range s.Tolerations {
			found = found || tol.Key == "unikube.dev/dedicated"
		}
		if !found {
			t.Errorf("pod %s tolerations %v, want the workload's", p.Name, s.Tolerations)
		}
		if s.Affinity == nil || s.Affinity.NodeAffinity == nil {
			t.Errorf("pod %s has no node affinity", p.Name)
		}
		if s.PriorityClassName != pc || s.Priority == nil || *s.Priority != 1000 {
			t.Errorf("pod %s priorityClassName %q priority %v, want %s (1000)", p.Name, s.PriorityClassName, s.Priority, pc)
		}
	}
}

// TestExecutor_ApplyIntoAWorkloadRunningAsARandomUID: a workload running as
// an OpenShift-style uid (1000730000, fsGroup the same, runAsNonRoot, no
// group) in a namespace enforcing the restricted Pod Security Standard:
// the apply works, and the restored files belong to that uid, so the app
// reads them and writes next to them.
func TestExecutor_ApplyIntoAWorkloadRunningAsARandomUID(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wantFiles, _ := fitSeed(ctx, t, cl, false)
	const uid = int64(1000730000)
	clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, restrictedWeb(env, uid))
	exWaitReady(ctx, t, env, ns, "app=web", 1)
	enforceRestricted(ctx, t, env, ns)
	pods := agentPods(ctx, t, env, ns)

	fitApply(ctx, t, env, cl, platformURL, ns, []discovery.Mapping{{Component: "files", Workload: "Deployment/web"}})
	if got := exPodFilesSum(ctx, t, env, ns); got != wantFiles {
		t.Errorf("files\n%s\nwant\n%s", got, wantFiles)
	}
	for _, p := range pods() {
		if sc := p.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid {
			t.Errorf("agent pod %s runs as %+v, want uid %d", p.Name, sc, uid)
		}
	}
	pod := exPod(ctx, t, env, ns, "app=web")
	out, errOut, err := execIn(ctx, env, ns, pod, "web", nil, "sh", "-c",
		"stat -c '%u %n' /uploads/img /uploads/img/*.bin | sort -u -k1,1 | cut -d' ' -f1; touch /uploads/img/written-by-the-app && echo wrote")
	if err != nil {
		t.Fatalf("check ownership in %s: %v %s", pod, err, errOut)
	}
	if got := strings.Fields(out); len(got) != 2 || got[0] != fmt.Sprint(uid) || got[1] != "wrote" {
		t.Fatalf("restored files owned by / app write: %q (%s), want %d only and a successful write", out, errOut, uid)
	}
}

func fitPtr[T any](v T) *T { return &v }

// TestExecutor_BoundRoleFailsFastWhenTheNamespaceRefusesThePod: applied
// by a ServiceAccount bound only to the shipped Role, into a namespace
// whose LimitRange allows less cpu than the agent's limit, the apply fails
// within a minute with the namespace's reason (the Job's FailedCreate
// event, which the Role may read), not at its timeout.
func TestExecutor_BoundRoleFailsFastWhenTheNamespaceRefusesThePod(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fitSeed(ctx, t, cl, false)
	clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, restrictedWeb(env, 999))
	exWaitReady(ctx, t, env, ns, "app=web", 1)
	// The app (limit 100m) fits; the agent (limit 1 cpu by default) does not.
	if _, err := env.Client.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "small"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Max: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("150m")},
		}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deployer := exBoundClient(ctx, t, env, ns, "deployer", nil)

	start := time.Now()
	_, err := executor.Apply(ctx, executor.Options{
		Client: deployer, Namespace: ns, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "fit", State: "seed", Tag: "v1"}, Release: "fit",
		Mappings: []discovery.Mapping{{Component: "files", Workload: "Deployment/web"}}, Quiesce: true,
		AgentImage: env.Image("unikube-agent"), Actor: "e2e", Timeout: 5 * time.Minute,
	})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "refuses its pod") || !strings.Contains(err.Error(), "maximum cpu usage per Container is 150m") {
		t.Fatalf("apply as the bound ServiceAccount: %v, want the namespace's refusal named", err)
	}
	if took > 90*time.Second {
		t.Fatalf("the refusal took %s to report: the Role's events rights are not used", took.Round(time.Second))
	}
	t.Logf("refused in %s: %v", took.Round(time.Millisecond), err)
}
