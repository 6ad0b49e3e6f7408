package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestScript_SecretsNeverLeaveTheClusterInItsLog runs a script that prints
// every secret it was given (a mounted credentials Secret, whole, with a
// multi-line key; a sensitive variable whose default the platform keeps
// sealed) and then fails: the streamed output, the recorded log tail and
// stack trace and the returned error show none of them, the script did get
// them, and the kept failed Job has lost its Secret.
func TestScript_SecretsNeverLeaveTheClusterInItsLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	const (
		apiKey = "k3y-0f-the-api-4711"
		pemKey = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\nggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyji\n-----END PRIVATE KEY-----\n"
		dbPass = "seal3d-db-passw0rd"
	)
	s.secret(ctx, t, "api-creds", map[string]string{"api-key": apiKey, "tls.key": pemKey})
	s.put(ctx, t, "leaky", client.ScriptSpec{Interpreter: "bash", Image: s.env.Image("python"),
		Body: `key=$(cat /unikube/credentials/api-creds/api-key)
echo "key=$key"
cat /unikube/credentials/api-creds/tls.key
echo "pass=$DB_PASSWORD len=${#DB_PASSWORD}"
echo "b64=$(printf %s "$key" | base64)"
false "$DB_PASSWORD"
`,
		Variables:   []client.Variable{{Name: "DB_PASSWORD", Sensitive: true, Default: dbPass}},
		Credentials: []client.Credential{{Secret: "api-creds"}},
	})
	var follow bytes.Buffer
	_, err := scriptrun.Run(ctx, scriptrun.Options{Client: s.env.Client, Platform: s.cl, Namespace: s.ns, Script: "scripts/leaky", Follow: &follow})
	var fe *scriptrun.FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("want the script to fail, got %v\n%s", err, follow.String())
	}
	run := s.onlyRun(ctx, t, "leaky")
	t.Logf("recorded log tail:\n%s\nstack trace:\n%s", run.LogTail, run.StackTrace)
	seen := map[string]string{"streamed": follow.String(), "log tail": run.LogTail, "stack trace": run.StackTrace, "error": err.Error()}
	for where, text := range seen {
		for _, secret := range []string{apiKey, dbPass, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw", "ggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyji"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %q:\n%s", where, secret, text)
			}
		}
	}
	if !strings.Contains(run.LogTail, "key=(sensitive)") || !strings.Contains(run.LogTail, "len=18") || !strings.Contains(run.LogTail, "b64=(sensitive)") {
		t.Errorf("the script did not get its secrets, or the log was not kept:\n%s", run.LogTail)
	}
	// The failed Job stays for inspection; its Secret (the sealed default)
	// went once the run was recorded.
	if _, err := s.env.Client.BatchV1().Jobs(s.ns).Get(ctx, fe.Job, metav1.GetOptions{}); err != nil {
		t.Errorf("the failed job was not kept: %v", err)
	}
	if _, err := s.env.Client.CoreV1().Secrets(s.ns).Get(ctx, fe.Job, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed job's secret is still there: %v", err)
	}
}

// TestAgentJobs_FailedKeepTheirLogButNotTheirSecretSucceededExpire checks
// the lifetime of agent Jobs on a real cluster: a failed one keeps its Job
// and pod (the log stays readable) without its credentials Secret or a
// TTL; a succeeded one whose runner went away is removed, Secret included,
// by ttlSecondsAfterFinished.
func TestAgentJobs_FailedKeepTheirLogButNotTheirSecretSucceededExpire(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("failed", func(t *testing.T) {
		_, err := jobs.Run(ctx, env.Client, jobs.Spec{Namespace: ns, Component: "broken", AgentImage: env.Image("unikube-agent"),
			Args: []string{"no-such-command"}, Token: "uks_e2e-fake-token", Password: "e2e-fake-password"}, jobs.RunOptions{})
		var pe *jobs.PodError
		if !errors.As(err, &pe) || !pe.Kept {
			t.Fatalf("want a kept PodError, got %v", err)
		}
		job, err := env.Client.BatchV1().Jobs(ns).Get(ctx, pe.Job, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the failed job was not kept: %v", err)
		}
		if job.Spec.TTLSecondsAfterFinished != nil {
			t.Errorf("the failed job still expires after %ds", *job.Spec.TTLSecondsAfterFinished)
		}
		if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, pe.Job, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the failed job's credentials secret is still there: %v", err)
		}
		logs, err := env.Client.CoreV1().Pods(ns).GetLogs(pe.Pod, &corev1.PodLogOptions{Container: jobs.AgentContainer}).DoRaw(ctx)
		if err != nil || !strings.Contains(string(logs), "no-such-command") {
			t.Errorf("the failed pod's log is not readable: %v %s", err, logs)
		}
	})

	t.Run("succeeded without a runner to delete it", func(t *testing.T) {
		job, secret := jobs.Build(jobs.Spec{Namespace: ns, Component: "orphan", AgentImage: env.Image("unikube-agent"),
			Args: []string{"version"}, Token: "uks_e2e-fake-token", TTLAfterFinished: time.Second})
		created, err := env.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID}}
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, "the succeeded job and its secret to expire", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			j, err := env.Client.BatchV1().Jobs(ns).Get(ctx, created.Name, metav1.GetOptions{})
			if err == nil {
				return false, "job still there: " + jobState(j.Status.Succeeded, j.Status.Failed), nil
			}
			if !apierrors.IsNotFound(err) {
				return false, "", err
			}
			if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, secret.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, "secret still there", nil
			}
			return true, "", nil
		})
	})
}

func jobState(succeeded, failed int32) string {
	switch {
	case succeeded > 0:
		return "succeeded"
	case failed > 0:
		return "failed"
	}
	return "running"
}

// boundTo returns a client acting as a new ServiceAccount bound only to
// the documented Role of op.
func boundTo(ctx context.Context, t *testing.T, env *cluster.Env, ns, sa string, op rbac.Operation) kubernetes.Interface {
	t.Helper()
	role, err := rbac.RoleFor(op)
	if err != nil {
		t.Fatal(err)
	}
	cs := env.Client
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := exSAToken(ctx, env, ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.AnonymousClientConfig(env.RESTConfig)
	rc.BearerToken = tok
	bound, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return bound
}

// TestRBAC_ApplyWithoutExecAndEachOperationNamesWhatItMisses binds
// ServiceAccounts to single Roles on a real API server: the restore Role
// (no pods/exec) passes an apply's access check, and an apply with hooks
// is refused naming pods/exec and the hooks Role before anything runs; the
// capture Role passes a capture's check and is refused a restore's,
// naming the verbs it lacks.
func TestRBAC_ApplyWithoutExecAndEachOperationNamesWhatItMisses(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url, cl := exPlatform(t, env)
	deployer := boundTo(ctx, t, env, ns, "deployer", rbac.OpRestore)
	capturer := boundTo(ctx, t, env, ns, "capturer", rbac.OpCapture)
	opts := executor.Options{Client: deployer, Namespace: ns, Platform: cl, PlatformURL: url, Release: "shop",
		Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, AgentImage: env.Image("unikube-agent"), Actor: "e2e"}

	// No hooks: the access check passes; the apply then fails only
	// because the platform has no such state.
	_, err := executor.Apply(ctx, opts)
	if err == nil || errors.Is(err, rbac.ErrMissing) {
		t.Fatalf("apply without hooks under the restore Role: %v, want past the access check", err)
	}
	withHooks := opts
	withHooks.RESTConfig = env.RESTConfig
	withHooks.PreHooks = []hooks.Hook{{Name: "flush", Selector: "app=web", Command: []string{"true"}}}
	_, err = executor.Apply(ctx, withHooks)
	if !errors.Is(err, rbac.ErrMissing) || !strings.Contains(err.Error(), "cannot create pods/exec (Role unikube-state-hooks)") ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("apply with hooks under the restore Role: %v, want pods/exec and its Role named", err)
	}
	if strings.Count(err.Error(), "cannot ") != 1 {
		t.Errorf("only pods/exec is missing: %v", err)
	}

	capture, err := rbac.Needed(rbac.OpCapture)
	if err != nil {
		t.Fatal(err)
	}
	if err := rbac.Check(ctx, capturer, ns, capture); err != nil {
		t.Fatalf("capture Role fails its own check: %v", err)
	}
	restore, err := rbac.Needed(rbac.OpRestore)
	if err != nil {
		t.Fatal(err)
	}
	err = rbac.Check(ctx, capturer, ns, restore)
	if !errors.Is(err, rbac.ErrMissing) || !strings.Contains(err.Error(), "cannot update configmaps (Role unikube-state-restore)") ||
		strings.Contains(err.Error(), "pods/exec") {
		t.Fatalf("restore under the capture Role: %v, want the ConfigMap writes named", err)
	}
}
