package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestExecutor_HooksRunAroundTheRestore checks pre hooks run before the
// quiesce (a failing one stops the apply before anything changes unless
// its policy is continue) and post hooks run once the workloads are back;
// then that an interrupted quiesce is recovered from the annotation.
func TestExecutor_HooksRunAroundTheRestore(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	exSeed(ctx, t, cl)
	exCreateApp(ctx, t, env, ns)
	files := []discovery.Mapping{{Component: "files", Workload: "Deployment/web"}}
	apply := func(tag string, pre, post []hooks.Hook) error {
		_, err := executor.Apply(ctx, executor.Options{Client: env.Client, RESTConfig: env.RESTConfig, Namespace: ns, Platform: cl,
			PlatformURL: platformURL, Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: tag}, Release: "shop",
			Mappings: files, Quiesce: true, AgentImage: env.Image("unikube-agent"), PreHooks: pre, PostHooks: post})
		return err
	}
	sh := func(script string) []string { return []string{"sh", "-c", script} }

	before, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = apply("v1", []hooks.Hook{{Name: "fails", Selector: "app=cache", Command: sh("echo broken >&2; exit 3")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing pre hook: %v, want an error with its stderr before anything changed", err)
	}
	after, _ := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if after.Generation != before.Generation {
		t.Errorf("web was touched despite the failed pre hook")
	}

	err = apply("v1",
		[]hooks.Hook{
			{Name: "tolerated", Selector: "app=cache", Command: sh("exit 1"), OnError: hooks.OnErrorContinue},
			{Name: "mark", Selector: "app=cache", Command: sh("echo pre > /tmp/pre-hook")},
		},
		[]hooks.Hook{{Name: "after", Selector: "app=web", Timeout: 30 * time.Second, Command: sh("test -f /uploads/img/00.bin && echo post > /uploads/post-hook")}})
	if err != nil {
		t.Fatalf("apply with hooks: %v", err)
	}
	if out, e, err := execIn(ctx, env, ns, exPod(ctx, t, env, ns, "app=cache"), "redis", nil, "cat", "/tmp/pre-hook"); err != nil || strings.TrimSpace(out) != "pre" {
		t.Errorf("pre hook output: %q %s %v", out, e, err)
	}
	if out, e, err := execIn(ctx, env, ns, exPod(ctx, t, env, ns, "app=web"), "web", nil, "cat", "/uploads/post-hook"); err != nil || strings.TrimSpace(out) != "post" {
		t.Errorf("post hook did not run after the restore: %q %s %v", out, e, err)
	}

	// An interrupted apply (scaled down twice, never back up) is recovered
	// to the original replica count from the annotation.
	web := []quiesce.Workload{{Kind: quiesce.Deployment, Name: "web"}}
	for range 2 {
		if err := quiesce.Down(ctx, env.Client, ns, web, quiesce.Options{}); err != nil {
			t.Fatalf("quiesce down: %v", err)
		}
	}
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 0 || d.Annotations[quiesce.AnnotationReplicas] != "1" {
		t.Fatalf("after two downs: replicas %v annotations %v (%v), want 0 and the original 1 recorded", d.Spec.Replicas, d.Annotations, err)
	}
	got, err := quiesce.Recover(ctx, env.Client, ns, quiesce.Options{})
	if err != nil || len(got) != 1 || got[0] != web[0] {
		t.Fatalf("recover: %v %v, want web", got, err)
	}
	d, err = env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if _, still := d.Annotations[quiesce.AnnotationReplicas]; err != nil || *d.Spec.Replicas != 1 || still {
		t.Fatalf("after recover: replicas %v annotations %v (%v), want 1 and no annotation", d.Spec.Replicas, d.Annotations, err)
	}
	exWaitReady(ctx, t, env, ns, "app=web", 1)
}
