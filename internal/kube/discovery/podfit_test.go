package discovery

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func filesWorkload(spec corev1.PodSpec) *appsv1.Deployment {
	spec.Containers = []corev1.Container{{Name: "app", Image: "app"}}
	spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "files"}}}}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "files"}}, Spec: spec}}}
}

func resolveFiles(t *testing.T, objs ...runtime.Object) Target {
	t.Helper()
	objs = append(objs, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "files", Namespace: "ns"}})
	ts, err := Resolve(context.Background(), fake.NewClientset(objs...), "ns", []Mapping{{Component: "files", Kind: statepkg.KindVolume, Workload: "Deployment/app"}})
	if err != nil {
		t.Fatal(err)
	}
	return ts[0]
}

// TestResolve_TargetCarriesTheWorkloadsPlacement: the target of a
// component carries its workload's pull secrets, node placement and
// priority for the agent Job.
func TestResolve_TargetCarriesTheWorkloadsPlacement(t *testing.T) {
	spec := corev1.PodSpec{
		ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "regcred"}},
		NodeSelector:      map[string]string{"pool": "data"},
		Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
		PriorityClassName: "data-critical",
	}
	got := resolveFiles(t, filesWorkload(spec)).Fit
	if len(got.ImagePullSecrets) != 1 || got.NodeSelector["pool"] != "data" || len(got.Tolerations) != 1 || got.PriorityClassName != "data-critical" {
		t.Fatalf("fit %+v, want the workload's placement", got)
	}
}

// TestResolve_TargetCarriesTheServiceAccountsPullSecrets: the pull
// secrets of the workload's ServiceAccount (which admission adds to the
// workload's pods, not to the agent's) go to the agent Job too, after the
// template's own and each once; a workload naming no account gets those of
// "default".
func TestResolve_TargetCarriesTheServiceAccountsPullSecrets(t *testing.T) {
	sa := func(name string, secrets ...string) *corev1.ServiceAccount {
		a := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		for _, s := range secrets {
			a.ImagePullSecrets = append(a.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		return a
	}
	spec := corev1.PodSpec{ServiceAccountName: "app", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}
	tg := resolveFiles(t, filesWorkload(spec), sa("app", "sa-cred", "regcred"), sa("default", "default-cred"))
	if got := tg.Fit.ImagePullSecrets; len(got) != 2 || got[0].Name != "regcred" || got[1].Name != "sa-cred" {
		t.Fatalf("pull secrets %v, want [regcred sa-cred]", got)
	}
	job, _ := jobs.Build(jobs.Spec{Namespace: "ns", Component: "files", AgentImage: "a", PVC: tg.PVC, Fit: tg.Fit})
	if got := job.Spec.Template.Spec.ImagePullSecrets; len(got) != 2 || got[1].Name != "sa-cred" {
		t.Fatalf("job pull secrets %v", got)
	}
	tg = resolveFiles(t, filesWorkload(corev1.PodSpec{}), sa("default", "default-cred"))
	if got := tg.Fit.ImagePullSecrets; len(got) != 1 || got[0].Name != "default-cred" {
		t.Fatalf("pull secrets %v, want the default account's", got)
	}
	// No account to read (or no right to): the template's alone.
	tg = resolveFiles(t, filesWorkload(spec))
	if got := tg.Fit.ImagePullSecrets; len(got) != 1 || got[0].Name != "regcred" {
		t.Fatalf("pull secrets %v, want [regcred]", got)
	}
}

// TestResolve_UIDTheNamespaceGaveTheRunningPod: a template without a uid
// whose pods got one at admission (OpenShift's SCC) gives the agent that
// uid and fsGroup; with no pod running, a namespace with a uid range makes
// the Job set none.
func TestResolve_UIDTheNamespaceGaveTheRunningPod(t *testing.T) {
	uid := int64(1000730000)
	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "ns", Labels: map[string]string{"app": "files", "pod-template-hash": "x"}},
		Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{FSGroup: &uid},
			Containers: []corev1.Container{{Name: "app", SecurityContext: &corev1.SecurityContext{RunAsUser: &uid}}}}}
	openshift := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Annotations: map[string]string{UIDRangeAnnotation: "1000730000/10000"}}}

	tg := resolveFiles(t, filesWorkload(corev1.PodSpec{}), running, openshift)
	if tg.RunAsUser == nil || *tg.RunAsUser != uid || tg.FSGroup == nil || *tg.FSGroup != uid {
		t.Fatalf("uid %v fsGroup %v, want the running pod's %d", tg.RunAsUser, tg.FSGroup, uid)
	}
	tg = resolveFiles(t, filesWorkload(corev1.PodSpec{}), openshift)
	if tg.RunAsUser != nil || !tg.Fit.NamespaceAssignsUID {
		t.Fatalf("uid %v assigns %v, want no uid: the namespace assigns one", tg.RunAsUser, tg.Fit.NamespaceAssignsUID)
	}
	job, _ := jobs.Build(jobs.Spec{Namespace: "ns", Component: "files", AgentImage: "a", PVC: tg.PVC, Fit: tg.Fit})
	if job.Spec.Template.Spec.SecurityContext.RunAsUser != nil {
		t.Fatal("the Job forces a uid where the namespace assigns one")
	}
	tg = resolveFiles(t, filesWorkload(corev1.PodSpec{}), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	if tg.Fit.NamespaceAssignsUID {
		t.Fatal("a plain namespace taken for one that assigns uids")
	}
}

// TestSetAgentResources_PerComponentAndForAll: a component's own spec wins
// over "*" in either order; mistakes name what is wrong.
func TestSetAgentResources_PerComponentAndForAll(t *testing.T) {
	ms := []Mapping{{Component: "db"}, {Component: "files"}}
	if err := SetAgentResources(ms, []string{"db=memory=2Gi", "*=cpu=200m"}); err != nil {
		t.Fatal(err)
	}
	if q := ms[0].Resources.Limits[corev1.ResourceMemory]; q.String() != "2Gi" || ms[0].Resources.Requests.Cpu().String() != "0" {
		t.Errorf("db: %+v, want its own memory only", ms[0].Resources)
	}
	if q := ms[1].Resources.Requests[corev1.ResourceCPU]; q.String() != "200m" {
		t.Errorf("files: %+v, want the * spec", ms[1].Resources)
	}
	for _, tc := range []struct{ spec, says string }{
		{"cpu=1", "want COMPONENT=cpu=250m"},
		{"db", "want COMPONENT="},
		{"db=cpu=many", "not a quantity"},
		{"cache=cpu=1", "there are: db, files"},
	} {
		if err := SetAgentResources([]Mapping{{Component: "db"}, {Component: "files"}}, []string{tc.spec}); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.spec, err, tc.says)
		}
	}
}
