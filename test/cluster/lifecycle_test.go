package cluster

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpDown_LeavesNothingBehind brings the local cluster up (twice: the
// second call reuses it), runs a pod with a PVC so there are mounts, network
// namespaces and CNI rules to clean, then takes it down (twice: the second
// is a no-op) and checks that no process, device, iptables chain or mount is
// left. It first waits, through the exclusive use lock, until no other test
// process (test/e2e) uses the cluster.
func TestUpDown_LeavesNothingBehind(t *testing.T) {
	if os.Getenv("KUBECONFIG_E2E") != "" {
		t.Skip("KUBECONFIG_E2E names an external cluster; the local harness is not exercised")
	}
	if err := CheckHost(); err != nil {
		t.Skipf("no local cluster: %v", err)
	}
	if testing.Short() {
		t.Skip("starts and stops the local cluster; skipped with -short")
	}
	cfg := DefaultConfig()
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	unlock, err := LockExclusive(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	info, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("up: reused=%v in %s", info.Reused, info.Took.Round(time.Millisecond))
	again, err := Up(ctx, cfg)
	if err != nil || !again.Reused {
		t.Fatalf("second up: reused=%v err=%v", again != nil && again.Reused, err)
	}
	t.Logf("second up (reuse) in %s", again.Took.Round(time.Millisecond))

	runPodWithVolume(ctx, t, &cfg)
	recs := cfg.records()
	if len(recs) != len(componentOrder) {
		t.Fatalf("pid records = %d, want %d", len(recs), len(componentOrder))
	}

	start := time.Now()
	if err := Down(ctx, cfg); err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("down in %s", time.Since(start).Round(time.Millisecond))
	if err := Down(ctx, cfg); err != nil {
		t.Fatalf("second down: %v", err)
	}

	for _, r := range recs {
		if r.alive() {
			t.Errorf("%s (pid %d) still runs", r.name, r.pid)
		}
	}
	if pids := processesUsing(cfg.StateDir); len(pids) > 0 {
		t.Errorf("processes still use %s: %v", cfg.StateDir, pids)
	}
	for _, l := range []string{tapName, bridgeName} {
		if linkExists(l) {
			t.Errorf("network device %s left behind", l)
		}
	}
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.CommandContext(ctx, bin).Output()
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") || strings.Contains(line, podCIDR.String()) {
				t.Errorf("%s: left behind: %s", bin, line)
			}
		}
	}
	for _, dir := range []string{cfg.StateDir, hostPathBase} {
		if m := mountsUnder(dir); len(m) > 0 {
			t.Errorf("mounts left under %s: %v", dir, m)
		}
	}
	if _, err := os.Stat(hostPathBase); err == nil {
		t.Errorf("%s left behind", hostPathBase)
	}
}

// runPodWithVolume runs a non-root pod writing to a dynamically provisioned
// PVC, so the tear-down has volumes, a netns and CNI state to remove.
func runPodWithVolume(ctx context.Context, t *testing.T, cfg *Config) {
	t.Helper()
	cs, err := cfg.client()
	if err != nil {
		t.Fatal(err)
	}
	ns := "default"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "lifecycle-"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}},
		},
	}
	pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PVC: %v", err)
	}
	uid := int64(1234)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "lifecycle-"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid},
			Containers: []corev1.Container{{
				Name: "c", Image: registryHost() + "/busybox:latest", ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"sh", "-c", "echo hello > /data/f && sleep 3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}},
		},
	}
	pod, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	err = cfg.waitFor(ctx, "lifecycle pod running", "", 2*time.Minute, func(ctx context.Context) error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return &phaseError{p.Status}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type phaseError struct{ s corev1.PodStatus }

func (e *phaseError) Error() string {
	msg := string(e.s.Phase)
	for _, c := range e.s.ContainerStatuses {
		if c.State.Waiting != nil {
			msg += " " + c.State.Waiting.Reason + ": " + c.State.Waiting.Message
		}
		if c.State.Terminated != nil {
			msg += " terminated: " + c.State.Terminated.Reason
		}
	}
	return msg
}
