package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

func TestErrorsRepro(t *testing.T) {
	env := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	url, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	exSeed(ctx, t, cl)
	exCreateApp(ctx, t, env, ns)
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["password"] = []byte("wrong-password")
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []bool{true, false} {
		req := executor.Request{Options: executor.Options{Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: url,
			Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop", Quiesce: q,
			AgentImage: env.Image("unikube-agent"), Actor: "e2e"},
			Explicit: []discovery.Mapping{{Component: "db", Workload: "StatefulSet/db"}}, Components: []string{"db"}}
		p, err := executor.PlanApply(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = executor.ApplyPlan(ctx, p)
		t.Logf("quiesce=%v error:\n%v", q, err)
	}
}
