package jobs

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestBuild_DatabaseJobRunsDBImageWithAgentCopiedIn checks the shape of a
// database Job: the database image runs the agent installed by an init
// container from the agent image, the token only comes through the owned
// Secret, and the pod meets the restricted Pod Security Standard.
func TestBuild_DatabaseJobRunsDBImageWithAgentCopiedIn(t *testing.T) {
	uid := int64(999)
	job, secret := Build(Spec{Namespace: "ns", Component: "db", Image: "localhost/postgres:15", AgentImage: "localhost/unikube-agent:dev",
		Args: []string{"restore", "--target", "postgres://postgres@db:5432/app"}, Token: "uks_secret-token", RunAsUser: &uid,
		PasswordRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}})
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Image != "localhost/unikube-agent:dev" {
		t.Fatalf("init containers %+v, want the agent image installing itself", pod.InitContainers)
	}
	main := pod.Containers[0]
	if main.Image != "localhost/postgres:15" || main.Command[0] != AgentPath {
		t.Fatalf("main container runs %s %v, want the database image running %s", main.Image, main.Command, AgentPath)
	}
	if string(secret.Data["token"]) != "uks_secret-token" || secret.Name != job.Name {
		t.Fatalf("secret %s %v", secret.Name, secret.Data)
	}
	if strings.Contains(strings.Join(append(main.Command, main.Args...), " "), "uks_secret-token") {
		t.Fatal("token on the command line")
	}
	var sawToken, sawPw bool
	for _, e := range main.Env {
		if e.Name == EnvToken && e.ValueFrom.SecretKeyRef.Name == secret.Name {
			sawToken = true
		}
		if e.Name == EnvTargetPassword && e.ValueFrom.SecretKeyRef.Name == "db" {
			sawPw = true
		}
	}
	if !sawToken || !sawPw {
		t.Fatalf("env %+v: want token from the job secret and password from the app's secret", main.Env)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.RunAsNonRoot || sc.Capabilities.Drop[0] != "ALL" {
			t.Fatalf("container %s security context %+v, want restricted", c.Name, sc)
		}
	}
	// A finished Job goes by itself even when no runner is left to delete it.
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != int32(DefaultTTLAfterFinished.Seconds()) {
		t.Fatalf("ttlSecondsAfterFinished %v, want %v", ttl, DefaultTTLAfterFinished)
	}
	if *pod.SecurityContext.RunAsUser != 999 || *job.Spec.BackoffLimit != 0 || job.Labels[LabelManagedBy] != ManagedBy {
		t.Fatalf("job %+v", job)
	}
}

// TestBuild_VolumeJobMountsPVCOnItsNode checks a volume Job: the agent
// image itself, the PVC at /data, pinned to the node.
func TestBuild_VolumeJobMountsPVCOnItsNode(t *testing.T) {
	job, _ := Build(Spec{Namespace: "ns", Component: "files", AgentImage: "agent", PVC: "uploads", NodeName: "n1"})
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 0 || pod.Containers[0].Image != "agent" || pod.NodeName != "n1" {
		t.Fatalf("pod %+v", pod)
	}
	found := false
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "uploads" {
			found = true
		}
	}
	if !found || *pod.SecurityContext.RunAsUser != defaultUID {
		t.Fatalf("volumes %+v", pod.Volumes)
	}
}

// TestPodError_ShowsAgentErrorOnceAndTail checks the error text: the
// agent's error, then the tail without that same line again.
func TestPodError_ShowsAgentErrorOnceAndTail(t *testing.T) {
	e := &PodError{Job: "j", Pod: "p", Reason: "container agent exited 1 (Error)",
		LogTail: []string{`{"type":"progress"}`, `{"type":"error","error":"pg_restore: connection refused"}`}}
	s := e.Error()
	for _, want := range []string{"pg_restore: connection refused", "last 1 log lines", `{"type":"progress"}`, "exited 1"} {
		if !strings.Contains(s, want) {
			t.Errorf("error %q lacks %q", s, want)
		}
	}
	if n := strings.Count(s, "connection refused"); n != 1 {
		t.Errorf("error %q says the cause %d times, want once", s, n)
	}
	if len(e.LogTail) != 2 {
		t.Errorf("Error() changed the log tail: %v", e.LogTail)
	}
}

// TestBuild_CABundleMountedForTheAgent: with a CA ConfigMap the agent
// container reads the bundle from a read-only mount UNIKUBE_CA_FILE names.
func TestBuild_CABundleMountedForTheAgent(t *testing.T) {
	job, _ := Build(Spec{Namespace: "ns", Component: "db", Image: "localhost/postgres:15", AgentImage: "a", CAConfigMap: "unikube-ca-0123"})
	pod := job.Spec.Template.Spec
	main := pod.Containers[0]
	var env, mount bool
	for _, e := range main.Env {
		env = env || (e.Name == EnvCAFile && e.Value == CAFile)
	}
	for _, m := range main.VolumeMounts {
		mount = mount || (m.MountPath+"/"+CAKey == CAFile && m.ReadOnly)
	}
	var vol bool
	for _, v := range pod.Volumes {
		vol = vol || (v.ConfigMap != nil && v.ConfigMap.Name == "unikube-ca-0123")
	}
	if !env || !mount || !vol {
		t.Fatalf("env %v mount %v volume %v: want the bundle mounted read-only and named by %s", env, mount, vol, EnvCAFile)
	}
	job, _ = Build(Spec{Namespace: "ns", Component: "db", AgentImage: "a"})
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == EnvCAFile {
			t.Fatal("no CA ConfigMap: the agent must use the system's roots only")
		}
	}
}

func TestCABundleConfigMap_NamedByContent(t *testing.T) {
	a, b := CABundleConfigMap("ns", []byte("x")), CABundleConfigMap("ns", []byte("y"))
	if a.Name == b.Name || a.Name != CABundleConfigMap("other", []byte("x")).Name || a.Labels[LabelManagedBy] != ManagedBy {
		t.Fatalf("%s %s", a.Name, b.Name)
	}
}
