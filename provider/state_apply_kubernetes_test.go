package provider

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8sresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

const kubeAccAdminToken = "uks_acc-kubernetes-admin-token-0123456789"

// accKubePlatform starts the real platform server on the cluster node's
// address, so the agent pods reach it at the same URL as the provider, and
// points the provider at it and at the cluster (KUBECONFIG).
func accKubePlatform(t *testing.T, env *cluster.Env) *client.Client {
	t.Helper()
	if env.External {
		t.Skip("needs the local cluster harness: agent pods reach the platform on the node address")
	}
	t.Setenv("CHECKPOINT_DISABLE", "1")
	ctx, cancel := context.WithCancel(context.Background())
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		cancel()
		t.Fatalf("nodes: %v", err)
	}
	var ip string
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	srv, err := server.New(ctx, server.Options{DataDir: t.TempDir(), AdminToken: kubeAccAdminToken, Getenv: func(string) string { return "" }})
	if err != nil {
		cancel()
		t.Fatalf("platform: %v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		cancel()
		t.Fatalf("listen on the node address %s: %v", ip, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(35 * time.Second):
			t.Errorf("platform did not stop")
		}
		srv.Close()
	})
	url := "http://" + ln.Addr().String()
	t.Setenv(envEndpoint, url)
	t.Setenv(envToken, kubeAccAdminToken)
	t.Setenv(envKubeconfig, env.Kubeconfig)
	admin, err := client.New(client.Config{Endpoint: url, Token: kubeAccAdminToken, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateProject(ctx, testProject, "acceptance tests"); err != nil {
		t.Fatalf("create project %s: %v", testProject, err)
	}
	return admin
}

// kubeApp is the application the test seeds: a PostgreSQL StatefulSet of
// Helm release `release` (app.kubernetes.io/instance) whose password is in a
// Secret, and a Deployment `web` that uses the database and is stopped while
// it is replaced.
func kubeApp(ctx context.Context, t *testing.T, env *cluster.Env, ns, release string) {
	t.Helper()
	cs := env.Client
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	labels := map[string]string{"app.kubernetes.io/instance": release, "app.kubernetes.io/name": "postgresql"}
	_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: release + "-postgresql", Labels: labels},
		StringData: map[string]string{"password": "pw-" + ns}}, metav1.CreateOptions{})
	must("secret", err)
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: release + "-postgresql", Labels: labels},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432)}}}},
		metav1.CreateOptions{})
	must("service", err)
	uid, one, grace := int64(999), int32(1), int64(1)
	_, err = cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: release + "-postgresql", Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one, ServiceName: release + "-postgresql", Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid},
					Containers: []corev1.Container{{
						Name: "postgresql", Image: env.Image("postgres"), ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: release + "-postgresql"}, Key: "password"}}},
							{Name: "POSTGRES_DB", Value: "app"},
							{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
						},
						Ports:        []corev1.ContainerPort{{ContainerPort: 5432}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
							Command: []string{"pg_isready", "-U", "postgres", "-h", "127.0.0.1"}}},
							// Generous: on a loaded CI machine a slow probe must not take
							// the Service's only endpoint away in the middle of a restore.
							PeriodSeconds: 2, TimeoutSeconds: 10, FailureThreshold: 10},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: k8sresource.MustParse("1Gi")}},
				}}},
		},
	}, metav1.CreateOptions{})
	must("statefulset", err)
	web := map[string]string{"app": "web"}
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: web},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: web},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: web}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: &grace,
				SecurityContext:               &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid},
				Containers: []corev1.Container{{Name: "web", Image: env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", "while true; do sleep 1; done"}}},
			}}},
	}, metav1.CreateOptions{})
	must("deployment web", err)
	waitReady(ctx, t, env, ns, "app.kubernetes.io/instance="+release)
	waitReady(ctx, t, env, ns, "app=web")
}

// waitReady waits until exactly one pod of selector is ready.
func waitReady(ctx context.Context, t *testing.T, env *cluster.Env, ns, selector string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		last = fmt.Sprintf("%d/%d ready", ready, len(pods.Items))
		return ready == 1 && len(pods.Items) == 1, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (%s)", selector, err, last)
	}
}

// podSQL runs a query with psql in the database pod (what `kubectl exec`
// does) and returns its trimmed output.
func podSQL(ctx context.Context, env *cluster.Env, ns, release, query string) (string, error) {
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
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
func checkPodRows(env *cluster.Env, ns, release string, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := podSQL(ctx, env, ns, release, "SELECT count(*) FROM customers")
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

// checkRecord checks the newest record Secret of the release.
func checkRecord(env *cluster.Env, ns, release string, revision int, status string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		rec, err := records.Last(context.Background(), env.Client, ns, release, "")
		if err != nil {
			return err
		}
		if rec == nil || rec.Revision != revision || rec.Status != status || rec.Actor != "terraform" {
			return fmt.Errorf("last record %+v, want revision %d %s by terraform", rec, revision, status)
		}
		return nil
	}
}

func kubeApplyConfig(dump, ns, release string) string {
	return fmt.Sprintf(`
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
      component = "db"
      quiesce   = ["Deployment/web"]
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
`, dump, ns, release)
}

// TestAccStateApplyResource_Kubernetes applies a state made from a pg_dump
// file into a PostgreSQL StatefulSet of a Helm release, with quiesce and a
// post hook: the data is in the pod, the plan is then empty, a new version
// is re-applied, a deleted record shows as drift and is re-applied, and
// destroy (on_destroy = "rollback") brings the first version back.
func TestAccStateApplyResource_Kubernetes(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 to run it against a real platform, terraform CLI and cluster")
	}
	env := cluster.Require(t)
	accKubePlatform(t, env)
	ns := env.Namespace(t)
	const release = "shop"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubeApp(ctx, t, env, ns, release)

	dump := filepath.Join(t.TempDir(), "seed.sql")
	writeFile(t, dump, "CREATE TABLE customers (id int PRIMARY KEY, name text);\nINSERT INTO customers VALUES (1, 'ada'), (2, 'bob');\n")
	config := kubeApplyConfig(dump, ns, release)
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
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkPodRows(env, ns, release, 2),
					checkWebBack(env, ns),
					checkRecord(env, ns, release, 1, records.StatusApplied),
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
					checkPodRows(env, ns, release, 5),
					checkWebBack(env, ns),
					checkRecord(env, ns, release, 2, records.StatusApplied),
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
					checkPodRows(env, ns, release, 5),
					checkRecord(env, ns, release, 2, records.StatusApplied),
				),
			},
		},
		// on_destroy = "rollback": the first version is back.
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkPodRows(env, ns, release, 2),
			checkRecord(env, ns, release, 3, records.StatusApplied),
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
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}
