package e2e

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestQuiesce_SuspendsCronJobsAndRestoresTheirFlag checks CronJobs are
// suspended while quiesced and get back the suspend flag they had, also
// through Recover after an interrupted apply.
func TestQuiesce_SuspendsCronJobsAndRestoresTheirFlag(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mk := func(name string, suspended bool) {
		_, err := env.Client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.CronJobSpec{Schedule: "0 0 1 1 *", Suspend: &suspended, JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "c", Image: env.Image("busybox"), Command: []string{"true"}}}}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("report", false)
	mk("paused", true)
	ws := []quiesce.Workload{{Kind: quiesce.CronJob, Name: "report"}, {Kind: quiesce.CronJob, Name: "paused"}}
	state := func() map[string]bool {
		out := map[string]bool{}
		for _, w := range ws {
			c, err := env.Client.BatchV1().CronJobs(ns).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out[w.Name] = *c.Spec.Suspend
			if _, ok := c.Annotations[quiesce.AnnotationSuspend]; ok {
				out[w.Name+"/annotated"] = true
			}
		}
		return out
	}
	if err := quiesce.Down(ctx, env.Client, ns, ws, quiesce.Options{}); err != nil {
		t.Fatal(err)
	}
	if s := state(); !s["report"] || !s["paused"] || !s["report/annotated"] {
		t.Fatalf("after down: %v, want both suspended and annotated", s)
	}
	if err := quiesce.Up(ctx, env.Client, ns, ws, quiesce.Options{}); err != nil {
		t.Fatal(err)
	}
	if s := state(); s["report"] || !s["paused"] || s["report/annotated"] || s["paused/annotated"] {
		t.Fatalf("after up: %v, want report running, paused still paused, no annotations", s)
	}
	// Interrupted: down twice, then recover.
	for range 2 {
		if err := quiesce.Down(ctx, env.Client, ns, ws, quiesce.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := quiesce.Recover(ctx, env.Client, ns, quiesce.Options{})
	if err != nil || len(got) != 2 {
		t.Fatalf("recover: %v %v", got, err)
	}
	if s := state(); s["report"] || !s["paused"] || s["report/annotated"] {
		t.Fatalf("after recover: %v", s)
	}
}
