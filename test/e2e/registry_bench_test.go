package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	release "github.com/unikubehq/terraform-provider-unikube/internal/release/images"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// BenchmarkAgentJob_PullAndStart measures how long an agent Job (the
// Job and Secret the executor makes, running `unikube-agent version`)
// takes from its creation until the agent runs and until the Job is
// complete: cold, with the agent image not on the node (pulled from the
// cluster's authenticated registry), and warm, with it cached. The image
// is the release agent image built with a version of its own, so no image
// the node already has shares its binary layer; between iterations it is
// removed from the node again.
func BenchmarkAgentJob_PullAndStart(b *testing.B) {
	env := cluster.Require(b)
	reg := env.Registry(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := cluster.FindRepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	version := "bench-" + hex.EncodeToString(r[:])
	rb := &release.Builder{RepoRoot: root, WorkDir: b.TempDir(),
		Platforms: []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}},
		Meta:      release.Meta{Version: version, Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Source: release.DefaultSource}}
	built, err := rb.Build(ctx, "unikube-agent")
	if err != nil {
		b.Fatal(err)
	}
	im, err := built[0].Index.IndexManifest()
	if err != nil {
		b.Fatal(err)
	}
	img, err := built[0].Index.Image(im.Manifests[0].Digest)
	if err != nil {
		b.Fatal(err)
	}
	ref, err := reg.Push(ctx, img, "bench/unikube-agent:"+version)
	if err != nil {
		b.Fatal(err)
	}
	ns := env.Namespace(b)
	cfg := cluster.DefaultConfig()
	b.Cleanup(func() { _ = cluster.RemoveNodeImage(context.Background(), cfg, ref) })

	var cold, warm [2]time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := cluster.RemoveNodeImage(ctx, cfg, ref); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, d := runAgentJob(ctx, b, env, ns, ref)
		cold[0] += s
		cold[1] += d
		s, d = runAgentJob(ctx, b, env, ns, ref)
		warm[0] += s
		warm[1] += d
	}
	n := float64(b.N)
	b.ReportMetric(cold[0].Seconds()/n, "cold-start-s")
	b.ReportMetric(cold[1].Seconds()/n, "cold-done-s")
	b.ReportMetric(warm[0].Seconds()/n, "warm-start-s")
	b.ReportMetric(warm[1].Seconds()/n, "warm-done-s")
	b.Logf("agent image %s (%s)", ref, func() string {
		var size int64
		if ls, err := img.Layers(); err == nil {
			for _, l := range ls {
				s, _ := l.Size()
				size += s
			}
		}
		return fmt.Sprintf("%.1f MB compressed", float64(size)/1e6)
	}())
}

// runAgentJob creates an agent Job running `unikube-agent version` and
// returns how long after its creation the agent container was seen
// running (or done) and the Job complete; it deletes the Job after.
func runAgentJob(ctx context.Context, b *testing.B, env *cluster.Env, ns, image string) (started, done time.Duration) {
	b.Helper()
	job, secret := jobs.Build(jobs.Spec{Namespace: ns, Component: "bench", AgentImage: image, Args: []string{"version"}, Token: "uks_bench"})
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if _, err := env.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	defer func() {
		bg := metav1.DeletePropagationForeground
		_ = env.Client.BatchV1().Jobs(ns).Delete(context.Background(), job.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		_ = env.Client.CoreV1().Secrets(ns).Delete(context.Background(), secret.Name, metav1.DeleteOptions{})
		// The next cold run removes the image: no pod may hold it then.
		for ctx.Err() == nil {
			pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
			if err == nil && len(pods.Items) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for ctx.Err() == nil {
		if started == 0 {
			pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
			if err == nil {
				for _, p := range pods.Items {
					for _, c := range p.Status.ContainerStatuses {
						if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
							b.Fatalf("agent job %s: %s: %s", job.Name, w.Reason, w.Message)
						}
						if c.State.Running != nil || c.State.Terminated != nil {
							started = time.Since(t0)
						}
					}
				}
			}
		}
		j, err := env.Client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err == nil {
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				switch c.Type {
				case batchv1.JobComplete:
					if started == 0 {
						started = time.Since(t0)
					}
					return started, time.Since(t0)
				case batchv1.JobFailed:
					b.Fatalf("agent job %s failed: %s\n%s", job.Name, c.Message, podDiagnostics(context.Background(), env, ns))
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("agent job %s: %v\n%s", job.Name, ctx.Err(), podDiagnostics(context.Background(), env, ns))
	return 0, 0
}
