package jobs

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// workloadPod is a workload's pod spec with every field an agent pod
// follows, as a cluster with pull secrets, dedicated nodes and priorities
// would have it.
func workloadPod() corev1.PodSpec {
	uid := int64(1000730000)
	return corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		NodeSelector:     map[string]string{"pool": "data"},
		Tolerations:      []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "data", Effect: corev1.TaintEffectNoSchedule}},
		Affinity: &corev1.Affinity{
			NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}},
			PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}}},
		},
		PriorityClassName: "data-critical",
		SecurityContext:   &corev1.PodSecurityContext{RunAsUser: &uid, FSGroup: &uid, SupplementalGroups: []int64{5555}},
	}
}

// TestBuild_AgentPodFollowsTheWorkloadsPod: pull secrets, node selector,
// tolerations, node affinity, priority class and groups of the workload's
// pod are the agent pod's; the workload's pod anti-affinity is not (it is
// about the app's replicas and could keep the agent off every node).
func TestBuild_AgentPodFollowsTheWorkloadsPod(t *testing.T) {
	wp := workloadPod()
	uid := *wp.SecurityContext.RunAsUser
	job, _ := Build(Spec{Namespace: "ns", Component: "db", Image: "registry.example/postgres:16", AgentImage: "registry.example/unikube-agent:1",
		RunAsUser: &uid, FSGroup: &uid, Fit: FitFrom(wp)})
	pod := job.Spec.Template.Spec
	if !reflect.DeepEqual(pod.ImagePullSecrets, wp.ImagePullSecrets) {
		t.Errorf("imagePullSecrets %v, want the workload's %v", pod.ImagePullSecrets, wp.ImagePullSecrets)
	}
	if !reflect.DeepEqual(pod.NodeSelector, wp.NodeSelector) {
		t.Errorf("nodeSelector %v, want %v", pod.NodeSelector, wp.NodeSelector)
	}
	if !reflect.DeepEqual(pod.Tolerations, wp.Tolerations) {
		t.Errorf("tolerations %v, want %v", pod.Tolerations, wp.Tolerations)
	}
	if pod.Affinity == nil || !reflect.DeepEqual(pod.Affinity.NodeAffinity, wp.Affinity.NodeAffinity) {
		t.Errorf("affinity %+v, want the workload's node affinity", pod.Affinity)
	}
	if pod.Affinity.PodAntiAffinity != nil || pod.Affinity.PodAffinity != nil {
		t.Errorf("the agent pod took the workload's pod (anti-)affinity: %+v", pod.Affinity)
	}
	if pod.PriorityClassName != "data-critical" {
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	}
	sc := pod.SecurityContext
	if *sc.RunAsUser != uid || *sc.RunAsGroup != uid || *sc.FSGroup != uid || !reflect.DeepEqual(sc.SupplementalGroups, []int64{5555}) {
		t.Errorf("security context uid %d gid %d fsGroup %d groups %v, want the workload's", *sc.RunAsUser, *sc.RunAsGroup, *sc.FSGroup, sc.SupplementalGroups)
	}
	if !*sc.RunAsNonRoot || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the pod no longer meets the restricted Pod Security Standard")
	}
	// The fit is copied, not shared: changing the Job changes no workload.
	pod.NodeSelector["pool"] = "x"
	if wp.NodeSelector["pool"] != "data" {
		t.Error("the Job shares the workload's node selector map")
	}
}

// TestBuild_NoFixedUIDWhereTheNamespaceAssignsOne: on OpenShift a fixed uid
// outside the namespace's range is rejected; the Job then names none and
// stays runAsNonRoot. Elsewhere the default uid is kept.
func TestBuild_NoFixedUIDWhereTheNamespaceAssignsOne(t *testing.T) {
	job, _ := Build(Spec{Namespace: "ns", Component: "files", AgentImage: "a", PVC: "data", Fit: PodFit{NamespaceAssignsUID: true}})
	sc := job.Spec.Template.Spec.SecurityContext
	if sc.RunAsUser != nil || sc.RunAsGroup != nil {
		t.Fatalf("runAsUser %v runAsGroup %v, want none: the namespace assigns them", sc.RunAsUser, sc.RunAsGroup)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Fatal("runAsNonRoot dropped")
	}
	job, _ = Build(Spec{Namespace: "ns", Component: "files", AgentImage: "a", PVC: "data"})
	if sc := job.Spec.Template.Spec.SecurityContext; sc.RunAsUser == nil || *sc.RunAsUser != defaultUID {
		t.Fatalf("runAsUser %v, want the default %d", sc.RunAsUser, defaultUID)
	}
	// The workload's own uid wins even where the namespace assigns one.
	uid := int64(1000730000)
	job, _ = Build(Spec{Namespace: "ns", Component: "files", AgentImage: "a", PVC: "data", RunAsUser: &uid, Fit: PodFit{NamespaceAssignsUID: true}})
	if sc := job.Spec.Template.Spec.SecurityContext; sc.RunAsUser == nil || *sc.RunAsUser != uid {
		t.Fatalf("runAsUser %v, want the workload's %d", sc.RunAsUser, uid)
	}
}

// TestBuild_EveryContainerHasRequestsAndLimits: a namespace whose quota
// demands cpu and memory requests and limits admits the agent pod, init
// container included, with the defaults or the component's own values.
func TestBuild_EveryContainerHasRequestsAndLimits(t *testing.T) {
	own, err := ParseResources("cpu=250m,limits.memory=2Gi")
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*corev1.ResourceRequirements{"defaults": nil, "component's own": own} {
		job, _ := Build(Spec{Namespace: "ns", Component: "db", Image: "postgres", AgentImage: "a", Resources: r})
		pod := job.Spec.Template.Spec
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[rn], c.Resources.Limits[rn]
				if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
					t.Errorf("%s: container %s %s request %s limit %s, want both, request <= limit", name, c.Name, rn, req.String(), lim.String())
				}
			}
		}
	}
	job, _ := Build(Spec{Namespace: "ns", Component: "db", AgentImage: "a", PVC: "d", Resources: own})
	got := job.Spec.Template.Spec.Containers[0].Resources
	want := map[string]string{"requests.cpu": "250m", "limits.cpu": "250m", "requests.memory": "128Mi", "limits.memory": "2Gi"}
	for k, v := range want {
		side, rn, _ := strings.Cut(k, ".")
		l := got.Requests
		if side == "limits" {
			l = got.Limits
		}
		if q := l[corev1.ResourceName(rn)]; q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("%s = %s, want %s", k, q.String(), v)
		}
	}
}

// TestBuild_ARequestAboveTheDefaultLimitRaisesTheLimit: asking for more
// memory than the default limit gives a valid pod, not a rejected one.
func TestBuild_ARequestAboveTheDefaultLimitRaisesTheLimit(t *testing.T) {
	r, err := ParseResources("requests.memory=4Gi")
	if err != nil {
		t.Fatal(err)
	}
	job, _ := Build(Spec{Namespace: "ns", Component: "db", AgentImage: "a", PVC: "d", Resources: r})
	c := job.Spec.Template.Spec.Containers[0].Resources
	if lim := c.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("4Gi")) != 0 {
		t.Fatalf("memory limit %s, want raised to the 4Gi request", lim.String())
	}
}

func TestParseResources_RefusesWhatIsNotAResource(t *testing.T) {
	for _, s := range []string{"", "cpu", "cpu=", "cpu=lots", "gpu=1", "requests.disk=1Gi", "cpu=0", "cpu=-1", "cpu=1,cpu=2",
		"requests.cpu=2,limits.cpu=1", "foo.cpu=1"} {
		if _, err := ParseResources(s); err == nil {
			t.Errorf("ParseResources(%q) accepted it", s)
		}
	}
	r, err := ParseResources("memory=512Mi, requests.memory=256Mi")
	if err != nil {
		t.Fatal(err)
	}
	if q := r.Requests[corev1.ResourceMemory]; q.Cmp(resource.MustParse("256Mi")) != 0 {
		t.Errorf("requests.memory %s: the specific key must win over memory", q.String())
	}
	if q := r.Limits[corev1.ResourceMemory]; q.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("limits.memory %s", q.String())
	}
}

func failedCreate(job, msg string) *corev1.Event {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: job + ".1", Namespace: "ns"}, Reason: "FailedCreate", Message: msg,
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: job, Namespace: "ns"}}
}

// TestRun_FailsFastWhenTheNamespaceRefusesThePod: a pod the namespace
// forbids (here: no limits where the quota demands them) is never
// created; Run says why at once instead of waiting for the deadline. A pod
// only waiting for room in the quota is waited for.
func TestRun_FailsFastWhenTheNamespaceRefusesThePod(t *testing.T) {
	const refused = `Error creating: pods "unikube-files-x" is forbidden: failed quota: quota: must specify limits.cpu for: agent`
	cs := fake.NewClientset(failedCreate("unikube-files-1", refused))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Run(ctx, cs, Spec{Namespace: "ns", Name: "unikube-files-1", Component: "files", AgentImage: "a", PVC: "d"}, RunOptions{Poll: 5 * time.Millisecond})
	var pe *PodError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "must specify limits.cpu") || ctx.Err() != nil {
		t.Fatalf("got %v, want a fast PodError saying the quota's demand", err)
	}

	cs = fake.NewClientset(failedCreate("unikube-files-2", `Error creating: pods "unikube-files-y" is forbidden: exceeded quota: quota, requested: limits.cpu=1, used: limits.cpu=4, limited: limits.cpu=4`))
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Run(ctx, cs, Spec{Namespace: "ns", Name: "unikube-files-2", Component: "files", AgentImage: "a", PVC: "d"}, RunOptions{Poll: 5 * time.Millisecond})
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "cancelled") {
		t.Fatalf("got %v, want Run to wait for room in the quota until cancelled", err)
	}
}
