package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

const kubeAccAdminToken = "uks_acc-kubernetes-admin-token-0123456789"

// kubeAccRelease is the Helm release of the Kubernetes acceptance test's app.
const kubeAccRelease = "shop"

// accKubePlatform starts the real platform server on the cluster node's
// address, so the agent pods reach it at the same URL as the provider, and
// points the provider at it and at the cluster (KUBECONFIG).
func accKubePlatform(t *testing.T, env *cluster.Env) *client.Client {
	t.Helper()
	t.Setenv("CHECKPOINT_DISABLE", "1")
	p := clusterfixture.StartPlatform(t, env, kubeAccAdminToken)
	t.Setenv(envEndpoint, p.URL)
	t.Setenv(envToken, p.AdminToken)
	t.Setenv(envKubeconfig, env.Kubeconfig)
	// The harness's agent (a development build, like this test's provider):
	// the provider-level default every apply without its own agent_image uses.
	t.Setenv(envAgentImage, env.Image("unikube-agent"))
	if _, err := p.Admin.CreateProject(context.Background(), testProject, "acceptance tests"); err != nil {
		t.Fatalf("create project %s: %v", testProject, err)
	}
	return p.Admin
}

// kubeApp is the application the test seeds: a PostgreSQL StatefulSet of
// Helm release `release` (app.kubernetes.io/instance) whose password is in a
// Secret, and a Deployment `web` that uses the database and is stopped while
// it is replaced.
func kubeApp(ctx context.Context, t *testing.T, env *cluster.Env, ns, release string) {
	t.Helper()
	clusterfixture.CreatePostgres(ctx, t, env, ns, clusterfixture.Postgres{
		Name:      release + "-postgresql",
		Labels:    map[string]string{"app.kubernetes.io/instance": release, "app.kubernetes.io/name": "postgresql"},
		Container: "postgresql",
		Password:  "pw-" + ns,
	})
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, clusterfixture.Busybox(env, "while true; do sleep 1; done"))
	clusterfixture.WaitReady(ctx, t, env, ns, "app.kubernetes.io/instance="+release, 1)
	clusterfixture.WaitReady(ctx, t, env, ns, "app=web", 1)
}

// podSQL runs a query with psql in the database pod (what `kubectl exec`
// does) and returns its trimmed output.
func podSQL(ctx context.Context, env *cluster.Env, ns, query string) (string, error) {
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + kubeAccRelease})
	if err != nil {
		return "", err
	}
	var pod string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			pod = p.Name
		}
	}
	if pod == "" {
		return "", fmt.Errorf("no running database pod in %s", ns)
	}
	// The password comes from the container's own environment, never from
	// the test's command line.
	cmd := []string{"sh", "-c", `PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U postgres -d app -tAc "$0"`, query}
	req := env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "postgresql", Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(env.RESTConfig, "GET", req.URL().String())
	if err != nil {
		return "", err
	}
	sp, err := remotecommand.NewSPDYExecutor(env.RESTConfig, "POST", req.URL())
	if err != nil {
		return "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, sp, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb}); err != nil {
		return "", fmt.Errorf("psql in %s: %w: %s", pod, err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// checkPodRows checks the customers restored into the database pod.
func checkPodRows(env *cluster.Env, ns string, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := podSQL(ctx, env, ns, "SELECT count(*) FROM customers")
		if err != nil {
			return err
		}
		if out != strconv.Itoa(want) {
			return fmt.Errorf("database in the pod has %s customers, want %d", out, want)
		}
		return nil
	}
}

// checkWebBack checks that the quiesced Deployment is back at one replica,
// without the quiesce annotation.
func checkWebBack(env *cluster.Env, ns string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		d, err := env.Client.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *d.Spec.Replicas != 1 || d.Annotations["unikube.dev/quiesced-replicas"] != "" {
			return fmt.Errorf("deployment web: %d replicas, annotations %v; want 1 and no quiesce annotation", *d.Spec.Replicas, d.Annotations)
		}
		return nil
	}
}

// checkApplied checks that the newest record Secret of the release says
// revision was applied by terraform.
func checkApplied(env *cluster.Env, ns, release string, revision int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		rec, err := records.Last(context.Background(), env.Client, ns, release, "")
		if err != nil {
			return err
		}
		if rec == nil || rec.Revision != revision || rec.Status != records.StatusApplied || rec.Actor != "terraform" {
			return fmt.Errorf("last record %+v, want revision %d applied by terraform", rec, revision)
		}
		return nil
	}
}

func kubeApplyConfig(dump, ns, release, agentImage string) string {
	return fmt.Sprintf(`
provider "unikube" {
  agent_image = %[4]q
}

resource "unikube_named_state" "seed" {
  project             = "shop"
  name                = "seed"
  deletion_protection = false

  component {
    name = "db"
    kind = "postgres"
    source {
      path = %[1]q
    }
  }
}

resource "unikube_state_apply" "dev" {
  state      = "shop/seed@${unikube_named_state.seed.version_digest}"
  on_destroy = "rollback"

  kubernetes {
    namespace = %[2]q
    release   = %[3]q
    quiesce   = true

    mapping {
      component       = "db"
      quiesce         = ["Deployment/web"]
      agent_resources = { cpu = "250m", "limits.memory" = "512Mi" }
    }

    hooks {
      post {
        selector = "app.kubernetes.io/instance=%[3]s"
        command  = ["pg_isready", "-h", "127.0.0.1"]
        timeout  = "30s"
      }
    }
  }
}
`, dump, ns, release, agentImage)
}

// TestAccStateApplyResource_Kubernetes applies a state made from a pg_dump
// file into a PostgreSQL StatefulSet of a Helm release, with quiesce and a
// post hook: the data is in the pod, the plan is then empty, a new version
// is re-applied, a deleted record shows as drift and is re-applied, and
// destroy (on_destroy = "rollback") brings the first version back.
// positive: a count the apply really made (more than zero).
var positive = knownvalue.Int64Func(func(v int64) error {
	if v <= 0 {
		return fmt.Errorf("%d, want more than 0", v)
	}
	return nil
})

func TestAccStateApplyResource_Kubernetes(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 to run it against a real platform, terraform CLI and cluster")
	}
	env := cluster.Require(t)
	accKubePlatform(t, env)
	ns := env.Namespace(t)
	const release = kubeAccRelease
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubeApp(ctx, t, env, ns, release)

	dump := filepath.Join(t.TempDir(), "seed.sql")
	writeFile(t, dump, "CREATE TABLE customers (id int PRIMARY KEY, name text);\nINSERT INTO customers VALUES (1, 'ada'), (2, 'bob');\n")
	// The agent image comes from the provider block alone: without it the
	// default (ghcr.io/unikubehq/unikube-agent:dev) cannot be pulled here.
	t.Setenv(envAgentImage, "")
	config := kubeApplyConfig(dump, ns, release, env.Image("unikube-agent"))
	const addr = "unikube_state_apply.dev"
	start := time.Now()
	t.Cleanup(func() { t.Logf("kubernetes acceptance test took %s", time.Since(start).Round(time.Second)) })

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate),
						expectNoSecretInPlan("pw-" + ns),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("digest"), knownvalue.StringRegexp(digestPattern)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restore_plan").AtSliceIndex(0).AtMapKey("target"),
						knownvalue.StringExact(ns+"/StatefulSet/"+release+"-postgresql")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("results").AtSliceIndex(0).AtMapKey("component"), knownvalue.StringExact("db")),
					// What the agent did, not zeros: it fetched the archive's
					// chunks and read its bytes.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("results").AtSliceIndex(0).AtMapKey("chunks_fetched"), positive),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("results").AtSliceIndex(0).AtMapKey("bytes"), positive),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkPodRows(env, ns, 2),
					checkWebBack(env, ns),
					checkApplied(env, ns, release, 1),
					checkNoSecretInState("pw-"+ns),
				),
			},
			{
				// Nothing changed: the record says the namespace holds it.
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A new version of the source: a new version and a re-apply.
				PreConfig: func() {
					writeFile(t, dump, "CREATE TABLE customers (id int PRIMARY KEY, name text);\n"+
						"INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g;\n")
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("record"), knownvalue.Int64Exact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkPodRows(env, ns, 5),
					checkWebBack(env, ns),
					checkApplied(env, ns, release, 2),
				),
			},
			{
				// Someone deleted the newest record: the namespace no longer
				// says it holds the version, so the plan re-applies it (the
				// agent's preflight finds the data there and skips it).
				PreConfig: func() {
					if err := env.Client.CoreV1().Secrets(ns).Delete(context.Background(), records.SecretName(release, 2), metav1.DeleteOptions{}); err != nil {
						t.Fatalf("delete record: %v", err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkPodRows(env, ns, 5),
					checkApplied(env, ns, release, 2),
				),
			},
		},
		// on_destroy = "rollback": the first version is back.
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkPodRows(env, ns, 2),
			checkApplied(env, ns, release, 3),
		),
	})
}

// TestAccStateApplyResource_KubernetesValidationIsPlanTime: mistakes in the
// kubernetes and script blocks fail the plan with the attribute to fix,
// before anything reaches a cluster.
func TestAccStateApplyResource_KubernetesValidationIsPlanTime(t *testing.T) {
	admin := accPlatform(t)
	if _, err := admin.PutScript(context.Background(), testProject, "anonymize", client.ScriptSpec{
		Interpreter: "sh", Body: "echo $COUNT",
		Variables: []client.Variable{{Name: "COUNT", Required: true}},
	}); err != nil {
		t.Fatalf("put script: %v", err)
	}
	apply := func(body string) string {
		return `
resource "unikube_state_apply" "test" {
  state = "shop/seed"
` + body + `
}`
	}
	cases := []struct {
		name, config, want string
	}{
		{"both targets", apply(`
  endpoint {
    component = "db"
    url       = "postgres://127.0.0.1/shop"
  }
  kubernetes {
    namespace = "dev"
    release   = "shop"
  }`), `(?s)Conflicting targets`},
		{"no target", apply(``), `(?s)Missing target`},
		{"namespace missing", apply(`
  kubernetes {
    release = "shop"
  }`), `(?s)Missing namespace.*kubernetes \{`},
		{"release and selector", apply(`
  kubernetes {
    namespace = "dev"
    release   = "shop"
    selector  = "app=db"
  }`), `(?s)Conflicting workload selection.*selector  = "app=db"`},
		{"invalid selector", apply(`
  kubernetes {
    namespace = "dev"
    selector  = "app in in"
  }`), `(?s)Invalid label selector.*selector  = "app in in"`},
		{"invalid quiesce workload", apply(`
  kubernetes {
    namespace = "dev"
    release   = "shop"
    mapping {
      component = "db"
      quiesce   = ["web"]
    }
  }`), `(?s)Invalid workload.*quiesce   = \["web"\]`},
		{"invalid agent resources", apply(`
  kubernetes {
    namespace = "dev"
    release   = "shop"
    mapping {
      component       = "db"
      agent_resources = { cpu = "fast" }
    }
  }`), `(?s)Invalid agent resources.*not a quantity`},
		{"hook timeout", apply(`
  kubernetes {
    namespace = "dev"
    release   = "shop"
    hooks {
      pre {
        selector = "app=db"
        command  = ["true"]
        timeout  = "soon"
      }
    }
  }`), `(?s)Invalid duration.*timeout  = "soon"`},
		{"invalid substitution", apply(`
  kubernetes {
    namespace = "dev"
    release   = "shop"
    substitution {
      kinds = ["Deployment"]
      old   = "a"
      new   = "b"
    }
  }`), `(?s)Invalid substitution rule`},
		{"rollback of endpoints", apply(`
  on_destroy = "rollback"
  endpoint {
    component = "db"
    url       = "postgres://127.0.0.1/shop"
  }`), `(?s)Rollback needs a kubernetes target.*on_destroy = "rollback"`},
		{"missing required script variable", apply(`
  pre_script {
    script    = "shop/anonymize"
    namespace = "ci"
  }
  endpoint {
    component = "db"
    url       = "postgres://127.0.0.1/shop"
  }`), `(?s)Invalid script variables.*pre_script \{.*COUNT`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				TerraformVersionChecks:   writeOnlyArguments,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}
