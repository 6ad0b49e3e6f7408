package scriptrun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// A fake clientset has no kubelet: these tests play its part (a pod whose
// container waits or exits) to check how the runner reads pod states and
// what it records on the REAL platform. The cluster behaviour itself is
// checked by test/e2e/script_*_test.go.
func kubelet(ctx context.Context, t *testing.T, cs *fake.Clientset, ns string, state corev1.ContainerState) {
	t.Helper()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(jobs.Items) == 0 {
				continue
			}
			j := jobs.Items[0]
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x", Namespace: ns, Labels: map[string]string{LabelJobName: j.Name}},
				Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: Container, State: state}}}}
			_, _ = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			return
		}
	}()
}

func TestRun_RecordsTheResultOnThePlatform(t *testing.T) {
	srv := platformtest.Start(t)
	pc := srv.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pc.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.PutScript(ctx, "p", "s", client.ScriptSpec{Interpreter: "bash", Body: "false",
		Variables: []client.Variable{{Name: "TOKEN", Sensitive: true}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		state    corev1.ContainerState
		wantErr  string
		wantCode int
	}{
		{name: "exit 0", state: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
		{name: "exit 3", state: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}, wantErr: "exited 3", wantCode: 3},
		{name: "image that cannot be pulled", state: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "no such image"}},
			wantErr: "ImagePullBackOff: no such image", wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			kctx, kcancel := context.WithCancel(ctx)
			defer kcancel()
			kubelet(kctx, t, cs, "ns", tt.state)
			res, err := Run(ctx, Options{Client: cs, Platform: pc, Namespace: "ns", Script: "p/s", Vars: map[string]string{"TOKEN": "t0p"}, Poll: 20 * time.Millisecond})
			runs, lerr := pc.ListRuns(ctx, "p", "s", 1)
			if lerr != nil || len(runs) == 0 {
				t.Fatalf("runs: %v %v", runs, lerr)
			}
			run := runs[0]
			if run.Variables["TOKEN"] == "t0p" {
				t.Errorf("sensitive value recorded")
			}
			if tt.wantErr == "" {
				if err != nil || res.ExitCode != 0 || run.Status != client.RunSucceeded || run.ExitCode == nil || *run.ExitCode != 0 {
					t.Fatalf("err %v res %+v run %+v", err, res, run)
				}
				return
			}
			var fe *FailedError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantErr) || fe.ExitCode != tt.wantCode || fe.RunID != run.ID {
				t.Fatalf("err %v (%+v), want a FailedError with %q exit %d", err, fe, tt.wantErr, tt.wantCode)
			}
			if run.Status != client.RunFailed {
				t.Errorf("run %+v", run)
			}
			// The failed Job is kept with its ConfigMap; its Secret
			// (sensitive values) goes once the run is recorded.
			if _, err := cs.BatchV1().Jobs("ns").Get(ctx, fe.Job, metav1.GetOptions{}); err != nil {
				t.Errorf("failed job not kept: %v", err)
			}
			if cm, err := cs.CoreV1().ConfigMaps("ns").Get(ctx, fe.Job, metav1.GetOptions{}); err != nil || len(cm.OwnerReferences) != 1 {
				t.Errorf("configmap %+v %v", cm, err)
			}
			if _, err := cs.CoreV1().Secrets("ns").Get(ctx, fe.Job, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the failed job's secret with the sensitive value is still there: %v", err)
			}
		})
	}
}

// TestRun_SensitiveDefaultComesFromTheRecordedRun: the platform never shows
// a sensitive default; the runner gets it in the answer to recording the
// run and puts it only into the Job's Secret.
func TestRun_SensitiveDefaultComesFromTheRecordedRun(t *testing.T) {
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Env = map[string]string{"UNIKUBE_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	}))
	pc := srv.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pc.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.PutScript(ctx, "p", "s", client.ScriptSpec{Interpreter: "sh", Body: "true",
		Variables: []client.Variable{{Name: "PASSWORD", Sensitive: true, Default: "d3fault-secret"}}}); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	kubelet(kctx, t, cs, "ns", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}})
	res, err := Run(ctx, Options{Client: cs, Platform: pc, Namespace: "ns", Script: "p/s", KeepJob: true, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := cs.CoreV1().Secrets("ns").Get(ctx, res.Job, metav1.GetOptions{})
	if err != nil || string(sec.Data["var.PASSWORD"]) != "d3fault-secret" {
		t.Fatalf("the Job's Secret does not carry the default: %+v %v", sec, err)
	}
	job, err := cs.BatchV1().Jobs("ns").Get(ctx, res.Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Value == "d3fault-secret" {
			t.Fatalf("the default is in the Job spec in plain text: %s", e.Name)
		}
	}

	// Without the platform recording the run there is no way to the
	// default: a clear error, nothing created.
	sc, err := pc.GetScript(ctx, "p", "s")
	if err != nil {
		t.Fatal(err)
	}
	cs2 := fake.NewClientset()
	_, err = Run(ctx, Options{Client: cs2, Namespace: "ns", Fetched: &sc})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "PASSWORD") {
		t.Fatalf("want a ValidationError naming PASSWORD, got %v", err)
	}
	if jobs, _ := cs2.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Fatalf("a job was created: %+v", jobs.Items)
	}
}
