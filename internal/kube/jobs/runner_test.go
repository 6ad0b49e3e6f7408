package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestWatcher_ObserveSaysWhichPodStatesEndAJob plays the kubelet's part
// (a fake clientset has none) for the states the one runner must read the
// same way for scripts and agents. The cluster behaviour itself is checked
// by test/e2e (TestAgentJobs_*, TestScript_*).
func TestWatcher_ObserveSaysWhichPodStatesEndAJob(t *testing.T) {
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "msg"}}
	}
	exited := func(code int32, reason string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}
	}
	cases := []struct {
		name      string
		init      *corev1.ContainerState
		main      corev1.ContainerState
		retries   bool
		want      State
		reason    string
		failedIni string
	}{
		{name: "running", main: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}, want: Running},
		{name: "exit 0", main: exited(0, "Completed"), want: Succeeded},
		{name: "exit 2", main: exited(2, "Error"), want: Failed, reason: "container main exited 2"},
		{name: "exit 2 with retries left", main: exited(2, "Error"), retries: true, want: Waiting},
		{name: "command not in the image", main: exited(128, "StartError"), want: Failed, reason: "exited 128 (StartError)"},
		{name: "image not pulled", main: waiting("ImagePullBackOff"), want: Failed, reason: "container main: ImagePullBackOff: msg"},
		{name: "config error in its grace", main: waiting("CreateContainerConfigError"), want: Waiting},
		{name: "still creating", main: waiting("ContainerCreating"), want: Waiting},
		{name: "init container failed", init: &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}, main: waiting("PodInitializing"),
			want: Failed, reason: "init container fetch exited 1", failedIni: "fetch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cs := fake.NewClientset(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"}})
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "j-x", Namespace: "ns", Labels: map[string]string{LabelJobName: "j"}},
				Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: tc.main}}}}
			if tc.init != nil {
				pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "fetch", State: *tc.init}}
			}
			if _, err := cs.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			w := &Watcher{Client: cs, Namespace: "ns", Job: "j", Container: "main", Retries: tc.retries, Poll: time.Millisecond}
			obs := w.Observe(ctx)
			if obs.State != tc.want || !strings.Contains(obs.Reason, tc.reason) || obs.FailedInit != tc.failedIni || obs.Pod != "j-x" {
				t.Fatalf("Observe = %+v, want state %d, reason %q, failed init %q", obs, tc.want, tc.reason, tc.failedIni)
			}
		})
	}
}

// TestWatcher_AJobOrPodThatVanishesEndsTheWait: nothing is left to wait for.
func TestWatcher_AJobOrPodThatVanishesEndsTheWait(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "j-x", Namespace: "ns", Labels: map[string]string{LabelJobName: "j"}}})
	w := &Watcher{Client: cs, Namespace: "ns", Job: "j", Container: "main"}
	if obs := w.Observe(ctx); obs.State != Waiting {
		t.Fatalf("a pod without statuses: %+v", obs)
	}
	_ = cs.CoreV1().Pods("ns").Delete(ctx, "j-x", metav1.DeleteOptions{})
	if obs := w.Observe(ctx); obs.State != Failed || !strings.Contains(obs.Reason, "the pod disappeared") {
		t.Fatalf("after the pod went: %+v", obs)
	}
	_ = cs.BatchV1().Jobs("ns").Delete(ctx, "j", metav1.DeleteOptions{})
	if obs := w.Observe(ctx); obs.State != Failed || obs.Reason != "the job was deleted" {
		t.Fatalf("after the job went: %+v", obs)
	}
}
