package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// setPassword sets key password of Secret name in ns and returns a func
// putting the old value back.
func setPassword(ctx context.Context, t *testing.T, env *cluster.Env, ns, name, pw string) func() {
	t.Helper()
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := sec.Data["password"]
	sec.Data["password"] = []byte(pw)
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return func() {
		s, err := env.Client.CoreV1().Secrets(ns).Get(context.WithoutCancel(ctx), name, metav1.GetOptions{})
		if err == nil {
			s.Data["password"] = old
			_, err = env.Client.CoreV1().Secrets(ns).Update(context.WithoutCancel(ctx), s, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("put the password back: %v", err)
		}
	}
}

// TestErrors_WrongPasswordIsSaidOnceNamingTheSecretAndRecorded applies
// through the front ends' path (PlanApply, ApplyPlan) to a PostgreSQL
// whose Secret holds a wrong password, with and without the preflight
// Jobs a quiesce brings: the error says the cause once, names the Secret
// and key the password came from, gives no maintenance_db hint, says
// nothing was changed; a failed record keeps the reason. A closed port is
// said as such.
func TestErrors_WrongPasswordIsSaidOnceNamingTheSecretAndRecorded(t *testing.T) {
	env := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	url, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	exSeed(ctx, t, cl)
	exCreateApp(ctx, t, env, ns)
	defer setPassword(ctx, t, env, ns, "db", "wrong-password")()
	req := func(quiesce bool, ms ...discovery.Mapping) executor.Request {
		return executor.Request{Options: executor.Options{Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: url,
			Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop", Quiesce: quiesce,
			AgentImage: env.Image("unikube-agent"), Actor: "e2e"},
			Explicit: ms, Components: []string{"db"}}
	}
	db := discovery.Mapping{Component: "db", Workload: "StatefulSet/db"}
	for _, quiesce := range []bool{true, false} {
		t.Run(fmt.Sprintf("quiesce=%v", quiesce), func(t *testing.T) {
			p, err := executor.PlanApply(ctx, req(quiesce, db))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := executor.ApplyPlan(ctx, p)
			t.Logf("wrong password:\n%v", err)
			var ce *executor.CredentialError
			var re *executor.RefusedError
			if !errors.As(err, &ce) || !errors.As(err, &re) {
				t.Fatalf("error %v: want a *CredentialError and a *RefusedError", err)
			}
			msg := err.Error()
			if n := strings.Count(msg, "password authentication failed"); n != 1 {
				t.Errorf("the cause is said %d times, want once", n)
			}
			for _, want := range []string{"refused the password", "Secret db, key password", "POSTGRES_PASSWORD", "StatefulSet/db", "nothing was changed"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q", want)
				}
			}
			for _, bad := range []string{"maintenance_db", "template1", "TLS"} {
				if strings.Contains(msg, bad) {
					t.Errorf("error gives the hint %q, which does not apply", bad)
				}
			}
			if rec == nil || rec.Status != records.StatusFailed || !strings.Contains(rec.Error, "refused the password") {
				t.Fatalf("record %+v, want a failed record with the reason", rec)
			}
			last, err := records.Last(ctx, env.Client, ns, "shop", "")
			if err != nil || last == nil || last.Revision != rec.Revision || last.Status != records.StatusFailed {
				t.Errorf("newest record %+v (%v), want the failed revision %d", last, err, rec.Revision)
			}
		})
	}
	t.Run("closed port", func(t *testing.T) {
		// A Service in front of the database's pod on a port nothing
		// listens on: the pod refuses the connection.
		if _, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db-closed"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5999, TargetPort: intstr.FromInt32(5999)}}}},
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		closed := db
		closed.Service, closed.Port = "db-closed", 5999
		p, err := executor.PlanApply(ctx, req(false, closed))
		if err != nil {
			t.Fatal(err)
		}
		_, err = executor.ApplyPlan(ctx, p)
		t.Logf("closed port:\n%v", err)
		var ue *executor.UnreachableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot reach postgres at db-closed."+ns) || !strings.Contains(err.Error(), "connection refused") ||
			!strings.Contains(err.Error(), ":5999") || strings.Contains(err.Error(), "maintenance_db") {
			t.Fatalf("closed port: %v, want cannot reach ...:5999 without the maintenance_db hint", err)
		}
	})
}

// tokenKubeconfig writes a kubeconfig acting as ServiceAccount sa of ns
// (created, bound to clusterRole unless it is "").
func tokenKubeconfig(ctx context.Context, t *testing.T, env *cluster.Env, ns, sa, clusterRole string) (string, kubernetes.Interface) {
	t.Helper()
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if clusterRole != "" {
		if _, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := exSAToken(ctx, env, ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	ca := env.RESTConfig.CAData
	if len(ca) == 0 && env.RESTConfig.CAFile != "" {
		if ca, err = os.ReadFile(env.RESTConfig.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: env.RESTConfig.Host, CertificateAuthorityData: ca}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts[sa] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: sa, Namespace: ns}
	cfg.CurrentContext = sa
	p := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	rc := rest.AnonymousClientConfig(env.RESTConfig)
	rc.BearerToken = tok
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return p, cs
}

// TestErrors_RightsAreListedFirstWhateverTheCallerMayRead: a caller
// with `view` (who may not read Secrets, so not the release) and one
// with no rights at all hear every right an apply needs that they lack,
// and the Role file granting them, before anything is read.
func TestErrors_RightsAreListedFirstWhateverTheCallerMayRead(t *testing.T) {
	env := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	url, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	want, err := rbac.Needed(rbac.OpRestore)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sa, role string }{{"viewer", "view"}, {"nobody", ""}} {
		t.Run(c.sa, func(t *testing.T) {
			_, cs := tokenKubeconfig(ctx, t, env, ns, c.sa, c.role)
			_, err := executor.PlanApply(ctx, executor.Request{Options: executor.Options{Client: cs, Namespace: ns, Platform: cl, PlatformURL: url,
				Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}, Release: "shop"}, HelmRelease: "shop"})
			var me *rbac.MissingError
			if !errors.As(err, &me) {
				t.Fatalf("plan as %s: %v, want a *rbac.MissingError", c.sa, err)
			}
			t.Logf("%s: %d of %d rights missing:\n%v", c.sa, len(me.Missing), len(want), err)
			msg := err.Error()
			for _, w := range []string{"cannot get secrets (Role unikube-state-restore)", "cannot create jobs.batch", "cannot patch statefulsets.apps",
				rbac.RolesPath, "nothing was changed"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q", w)
				}
			}
			if strings.Contains(msg, "is forbidden") {
				t.Errorf("error is a raw forbidden: %v", err)
			}
			if c.role == "" && len(me.Missing) != len(want) {
				t.Errorf("no rights: %d missing, want all %d", len(me.Missing), len(want))
			}
			if c.role == "view" && strings.Contains(msg, "cannot get pods ") {
				t.Errorf("view may get pods, yet it is listed missing")
			}
		})
	}
}

// TestErrors_PluginSaysWhatIsWrongAndHistoryTellsTheTruth drives `helm
// state` on a release installed with helm: a rollback is recorded as a
// rollback of its revision; a wrong password in the release's Secret is
// said once, naming that Secret, and leaves a failed record that history
// shows; callers with `view` and without rights hear every missing right
// and the Role file, not "secrets is forbidden".
func TestErrors_PluginSaysWhatIsWrongAndHistoryTellsTheTruth(t *testing.T) {
	cluster.Require(t)
	forEachHelm(t, testPluginErrorsAndHistory)
}

func testPluginErrorsAndHistory(t *testing.T, h helmplugin.Helm) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	w := newHelmWorld(ctx, t, h)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), w.env, w.ns))
		}
	})
	if _, err := w.admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	w.ok(ctx, t, "install", "shop", filepath.Join("..", "..", "examples", "quickstart", "chart"), "-f", w.valuesFile(t), "--wait", "--timeout", "5m")
	d := shopData{w: w, release: "shop"}
	d.write(ctx, t, 1)
	w.ok(ctx, t, "state", "capture", "shop", "--to", "shop/seed:v1", "--component", "db")
	d.write(ctx, t, 2)
	w.ok(ctx, t, "state", "capture", "shop", "--to", "shop/seed:v2", "--component", "db")

	type entry struct {
		Revision   int    `json:"revision"`
		Status     string `json:"status"`
		Tag        string `json:"tag"`
		Error      string `json:"error"`
		RollbackOf int    `json:"rollbackOf"`
	}
	history := func() []entry {
		var hist []entry
		if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "history", "shop", "-o", "json")), &hist); err != nil {
			t.Fatal(err)
		}
		return hist
	}

	// Rollback: recorded as a rollback to revision 1.
	w.ok(ctx, t, "state", "apply", "shop/seed:v1", "shop")
	w.ok(ctx, t, "state", "apply", "shop/seed:v2", "shop")
	w.ok(ctx, t, "state", "rollback", "shop")
	hist := history()
	if len(hist) != 3 || hist[2].RollbackOf != 1 || hist[2].Tag != "v1" || hist[2].Status != records.StatusApplied || hist[1].RollbackOf != 0 {
		t.Fatalf("history %+v, want revision 3 applied as a rollback to revision 1", hist)
	}
	if out := w.ok(ctx, t, "state", "history", "shop"); !strings.Contains(out, "rollback to revision 1") {
		t.Errorf("history table does not say the rollback:\n%s", out)
	}

	// A wrong password in the release's Secret.
	restore := setPassword(ctx, t, w.env, w.ns, "shop-db", "wrong-password")
	out, errOut, code := w.run(ctx, t, "state", "apply", "shop/seed:v2", "shop")
	restore()
	t.Logf("wrong password: exit %d\n%s", code, errOut)
	if code != 1 || strings.Count(errOut, "password authentication failed") != 1 || !strings.Contains(errOut, "Secret shop-db, key password") ||
		!strings.Contains(errOut, "nothing was changed") || strings.Contains(errOut, "maintenance_db") {
		t.Errorf("apply with a wrong password: exit %d\nstdout:\n%s\nstderr:\n%s\nwant the cause once, naming Secret shop-db", code, out, errOut)
	}
	hist = history()
	if last := hist[len(hist)-1]; last.Status != records.StatusFailed || !strings.Contains(last.Error, "refused the password") {
		t.Errorf("newest record %+v, want failed, saying the password was refused", last)
	}

	// Callers who may not apply: every missing right, the Role file.
	for _, c := range []struct{ sa, role string }{{"viewer", "view"}, {"nobody", ""}} {
		kc, _ := tokenKubeconfig(ctx, t, w.env, w.ns, c.sa, c.role)
		as := *w
		as.baseEnv = append(append([]string{}, w.baseEnv...), "KUBECONFIG="+kc)
		out, errOut, code := as.run(ctx, t, "state", "apply", "shop/seed:v1", "shop")
		if code != 1 || !strings.Contains(errOut, "missing Kubernetes permissions") || !strings.Contains(errOut, "cannot get secrets") ||
			!strings.Contains(errOut, "cannot create jobs.batch") || !strings.Contains(errOut, rbac.RolesPath) || strings.Contains(errOut, "forbidden") {
			t.Errorf("apply as %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant every missing right and %s", c.sa, code, out, errOut, rbac.RolesPath)
		}
		out, errOut, code = as.run(ctx, t, "state", "rollback", "shop")
		if code != 1 || !strings.Contains(errOut, "missing Kubernetes permissions") || strings.Contains(errOut, "forbidden") {
			t.Errorf("rollback as %s: exit %d\nstdout:\n%s\nstderr:\n%s", c.sa, code, out, errOut)
		}
	}
}
