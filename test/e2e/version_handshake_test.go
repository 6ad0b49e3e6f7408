package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// TestExecutor_AgentOfAnotherVersionIsRefusedBeforeAnythingChanges applies
// a version with the harness's agent image (a development build, version
// "dev") from a client of release version v0.0.0-e2e-other: the agent says
// its version on its first line and the apply fails naming both versions
// and the image to use, while the database keeps its rows and the
// workloads keep their replicas and pods. Once with quiesce (the plan Jobs
// are refused before anything is scaled down) and once without (the
// restore Job itself refuses before it touches the database).
func TestExecutor_AgentOfAnotherVersionIsRefusedBeforeAnythingChanges(t *testing.T) {
	env := cluster.Require(t)
	url, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	exSeed(ctx, t, cl)
	pw := "pw-" + strings.ReplaceAll(ns, "e2e-", "")
	clusterfixture.CreatePostgres(ctx, t, env, ns, clusterfixture.Postgres{Name: "db", Password: pw})
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, clusterfixture.Busybox(env, "while true; do sleep 1; done"))
	exWaitReady(ctx, t, env, ns, "app=db", 1)
	exWaitReady(ctx, t, env, ns, "app=web", 1)
	dsn := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", pw, portForward(t, env, ns, exPod(ctx, t, env, ns, "app=db"), 5432))
	exPgExec(ctx, t, dsn, `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'live-' || g FROM generate_series(1, 100) g`)
	before := exPgSum(ctx, t, dsn)
	webPod := exPod(ctx, t, env, ns, "app=web")

	const client = "v0.0.0-e2e-other"
	agent := env.Image("unikube-agent")
	if agentVersion := buildinfo.Dev; client == agentVersion {
		t.Fatal("the test needs a client version other than the harness agent's")
	}
	for _, quiesce := range []bool{true, false} {
		t.Run(fmt.Sprintf("quiesce=%v", quiesce), func(t *testing.T) {
			_, err := executor.Apply(ctx, executor.Options{Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: url,
				Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop", Quiesce: quiesce,
				Mappings:   []discovery.Mapping{{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}}},
				AgentImage: agent, ClientVersion: client, Actor: "e2e"})
			var vm *jobs.VersionMismatchError
			if !errors.As(err, &vm) {
				t.Fatalf("apply with an agent of another version: %v, want a version mismatch", err)
			}
			t.Logf("refused: %v", err)
			for _, want := range []string{"the agent (image " + agent + ") is version dev", "this client is version " + client,
				"ghcr.io/unikubehq/unikube-agent:" + client} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nlacks %q", err, want)
				}
			}
			if quiesce && !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("a refused preflight must say nothing was changed: %v", err)
			}
			if !quiesce && !strings.Contains(err.Error(), "its target was not changed") {
				t.Errorf("a refused restore Job must say its target was not changed: %v", err)
			}
			if got := exPgSum(ctx, t, dsn); got != before {
				t.Errorf("database after the refused apply: %s, want %s", got, before)
			}
			for _, w := range []string{"web", "db"} {
				var replicas *int32
				if w == "web" {
					d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, w, metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					replicas = d.Spec.Replicas
				} else {
					s, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, w, metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					replicas = s.Spec.Replicas
				}
				if replicas == nil || *replicas != 1 {
					t.Errorf("%s replicas after the refused apply: %v, want 1 (never scaled)", w, replicas)
				}
			}
			if p := exPod(ctx, t, env, ns, "app=web"); p != webPod {
				t.Errorf("web pod %s replaced by %s: the workload was stopped", webPod, p)
			}
			// No restore Job ran to its end: the refused Job says why.
			js, err := env.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelManagedBy + "=" + jobs.ManagedBy})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range js.Items {
				if j.Status.Succeeded > 0 {
					t.Errorf("job %s (mode %s) succeeded with an agent of another version", j.Name, j.Labels[executor.LabelMode])
				}
			}
		})
	}
}
