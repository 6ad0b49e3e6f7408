package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// exBoundClient returns a client acting as a new ServiceAccount bound only
// to the documented Role, minus the rules drop removes.
func exBoundClient(ctx context.Context, t *testing.T, env *cluster.Env, ns, sa string, drop func(rbacv1.PolicyRule) rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	role, err := rbac.Role()
	if err != nil {
		t.Fatal(err)
	}
	role.Name = sa
	if drop != nil {
		for i := range role.Rules {
			role.Rules[i] = drop(role.Rules[i])
		}
	}
	cs := env.Client
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: sa},
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

// exSAToken mints a token of ServiceAccount sa.
func exSAToken(ctx context.Context, env *cluster.Env, ns, sa string) (string, error) {
	tok, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tok.Status.Token, nil
}

// TestExecutor_FaultsUnderTheDocumentedRole runs the executor as a
// ServiceAccount bound only to the documented Role: an apply succeeds; an
// agent pod killed mid-restore fails the apply fast with the log tail while
// the database keeps its data and the workloads come back; a missing verb
// is named before anything changes.
func TestExecutor_FaultsUnderTheDocumentedRole(t *testing.T) {
	env := cluster.Require(t)
	gate := &chunkGate{}
	p := clusterfixture.StartPlatformWrapped(t, env, exAdminToken, gate.wrap)
	platformURL, cl, dataDir := p.URL, p.Admin, p.DataDir
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	v1, _ := exSeed(ctx, t, cl)
	app := exCreateApp(ctx, t, env, ns)
	deployer := exBoundClient(ctx, t, env, ns, "deployer", nil)
	opts := func(cs kubernetes.Interface, tag string, ms []discovery.Mapping) executor.Options {
		return executor.Options{Client: cs, Namespace: ns, Platform: cl, PlatformURL: platformURL,
			Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: tag}, Release: "shop", Mappings: ms, Quiesce: true,
			AgentImage: env.Image("unikube-agent"), Actor: "e2e"}
	}
	dbOnly := []discovery.Mapping{{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}}}

	t.Run("apply as the bound ServiceAccount", func(t *testing.T) {
		if _, err := executor.Apply(ctx, opts(deployer, "v1", exMappings())); err != nil {
			t.Fatalf("apply with the documented Role: %v", err)
		}
		if got := exClusterSums(ctx, t, env, app); got != v1 {
			t.Fatalf("after apply: %+v, want %+v", got, v1)
		}
	})

	t.Run("corrupt chunk on the platform changes nothing", func(t *testing.T) {
		// Rot one stored chunk of v2's database after upload: still valid
		// zstd, but its content no longer has its digest.
		v2ref := statepkg.Ref{Project: "shop", State: "seed", Tag: "v2"}
		v, err := cl.Resolve(ctx, v2ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := cl.GetManifest(ctx, "shop", "seed", v.Digest)
		if err != nil {
			t.Fatal(err)
		}
		var chunk string
		for _, c := range m.Components {
			if c.Name == "db" {
				chunk = c.Chunks[len(c.Chunks)/2].Digest
			}
		}
		hexd := strings.TrimPrefix(chunk, "sha256:")
		path := filepath.Join(dataDir, "chunks", "sha256", hexd[:2], hexd)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("stored chunk: %v", err)
		}
		codec, err := statepkg.NewCodec(1)
		if err != nil {
			t.Fatal(err)
		}
		defer codec.Close()
		raw, err := codec.DecodeChunk(chunk, orig)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0xff
		_, rotten := codec.EncodeChunk(raw)
		_ = os.Chmod(path, 0o600)
		if err := os.WriteFile(path, rotten, 0o600); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Errorf("put the chunk back: %v", err)
			}
		}()
		before := exClusterSums(ctx, t, env, app)
		rec, err := executor.Apply(ctx, opts(deployer, "v2", dbOnly))
		if err == nil || !strings.Contains(err.Error(), "corrupt chunk") {
			t.Fatalf("apply with a corrupt chunk: %v, want a corrupt chunk error", err)
		}
		t.Logf("corrupt chunk: %v", err)
		if rec == nil || rec.Status != records.StatusFailed {
			t.Errorf("record %+v, want failed", rec)
		}
		if got := exClusterSums(ctx, t, env, app); got != before || got != v1 {
			t.Errorf("data after the failed apply %+v, want v1's %+v", got, v1)
		}
		exReplicasBack(ctx, t, env, ns)
		// Its Job is kept for inspection; remove it so the killed-pod
		// subtest counts only its own.
		bg := metav1.DeletePropagationBackground
		if err := env.Client.BatchV1().Jobs(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg},
			metav1.ListOptions{LabelSelector: jobs.LabelComponent + "=db," + executor.LabelMode + "=" + executor.ModeRestore}); err != nil {
			t.Errorf("delete the kept Job: %v", err)
		}
	})

	t.Run("failing post hook marks the record failed", func(t *testing.T) {
		o := opts(env.Client, "v1", dbOnly)
		o.RESTConfig = env.RESTConfig
		o.PostHooks = []hooks.Hook{{Name: "warm-cache", Selector: "app=cache", Command: []string{"sh", "-c", "echo cache unreachable >&2; exit 4"}}}
		rec, err := executor.Apply(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "post hooks") || !strings.Contains(err.Error(), "cache unreachable") {
			t.Fatalf("apply with a failing post hook: %v, want a post hook error with its stderr", err)
		}
		if rec == nil || rec.Status != records.StatusFailed || !strings.Contains(rec.Error, "post hooks") {
			t.Fatalf("record %+v, want failed with the hook's error", rec)
		}
		last, err := records.Last(ctx, env.Client, ns, "shop", "")
		if err != nil || last == nil || last.Status != records.StatusFailed || last.Revision != rec.Revision {
			t.Errorf("last record in the cluster %+v (%v), want the failed one", last, err)
		}
	})

	t.Run("agent pod killed mid-restore", func(t *testing.T) {
		// The agent's chunk downloads are held at the platform, so the pod
		// is certainly mid-restore (it has planned and started fetching)
		// when it is deleted, and its process cannot finish the restore
		// before the kubelet kills it: the downloads are let go only once
		// the dead process's connections have closed.
		held := gate.arm(exAdminToken)
		defer gate.disarm()
		killed := make(chan string, 1)
		go func() {
			defer close(killed)
			select {
			case <-held:
			case <-ctx.Done():
				return
			}
			for ctx.Err() == nil {
				pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelComponent + "=db," + executor.LabelMode + "=" + executor.ModeRestore})
				if err != nil {
					continue
				}
				for _, pod := range pods.Items {
					if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
						continue
					}
					b, err := env.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: jobs.AgentContainer}).DoRaw(ctx)
					if err != nil || len(b) == 0 {
						continue
					}
					_ = env.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
					killed <- pod.Name
					if !gate.waitClosed(ctx, time.Minute) {
						t.Errorf("the deleted pod's downloads were still open a minute later")
					}
					gate.disarm()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		start := time.Now()
		rec, err := executor.Apply(ctx, opts(deployer, "v2", dbOnly))
		took := time.Since(start)
		pod, ok := <-killed
		if !ok {
			t.Fatalf("the agent pod was never killed; apply returned %v after %s", err, took)
		}
		var pe *jobs.PodError
		if !errors.As(err, &pe) {
			t.Fatalf("apply after killing %s: %v, want a pod error", pod, err)
		}
		t.Logf("apply failed after %s: %v", took.Round(time.Millisecond), err)
		if len(pe.LogTail) == 0 || !strings.Contains(err.Error(), "log lines") {
			t.Errorf("error has no log tail: %v", err)
		}
		if took > 2*time.Minute {
			t.Errorf("apply took %s to notice the killed pod", took)
		}
		if rec == nil || rec.Status != records.StatusFailed || len(rec.Components) != 1 || rec.Components[0].Error == "" {
			t.Errorf("record %+v, want failed with the component's error", rec)
		}
		// The killed agent never had v2's data, so the database must hold
		// exactly the previous version.
		if got := exClusterSums(ctx, t, env, app); got.pg != v1.pg {
			t.Errorf("postgres after the killed restore %s, want v1's %s", got.pg, v1.pg)
		}
		exReplicasBack(ctx, t, env, ns)
		// The failed Job is kept for inspection.
		jl, _ := env.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelComponent + "=db," + executor.LabelMode + "=" + executor.ModeRestore})
		if len(jl.Items) != 1 {
			t.Errorf("%d failed jobs kept, want 1", len(jl.Items))
		}
	})

	t.Run("wrong password fails before anything is quiesced", func(t *testing.T) {
		sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec.Data["password"] = []byte("wrong-password")
		if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			sec.Data["password"] = []byte(app.password)
			sec.ResourceVersion = ""
			if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
				t.Errorf("restore the password: %v", err)
			}
		}()
		before, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = executor.Apply(ctx, opts(deployer, "v2", dbOnly))
		if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "password") {
			t.Fatalf("apply with a wrong password: %v, want a preflight error about the password", err)
		}
		t.Logf("wrong password: %v", err)
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Generation != before.Generation || *d.Spec.Replicas != 1 {
			t.Errorf("web changed (generation %d -> %d, replicas %v): %v", before.Generation, d.Generation, d.Spec.Replicas, err)
		}
		if _, ok := d.Annotations["unikube.dev/quiesced-replicas"]; ok {
			t.Errorf("web was quiesced despite the failed preflight")
		}
	})

	t.Run("missing RBAC verb is named", func(t *testing.T) {
		noPatch := exBoundClient(ctx, t, env, ns, "no-patch", func(r rbacv1.PolicyRule) rbacv1.PolicyRule {
			if len(r.Resources) > 0 && r.Resources[0] == "statefulsets" {
				r.Verbs = []string{"get", "list"}
			}
			return r
		})
		before := exClusterSums(ctx, t, env, app)
		_, err := executor.Apply(ctx, opts(noPatch, "v1", dbOnly))
		if !errors.Is(err, rbac.ErrMissing) || !strings.Contains(err.Error(), "cannot patch statefulsets.apps") {
			t.Fatalf("apply without patch on statefulsets: %v, want an error naming it", err)
		}
		if got := exClusterSums(ctx, t, env, app); got.pg != before.pg {
			t.Errorf("postgres changed: %s, was %s", got.pg, before.pg)
		}
	})
}

// exReplicasBack checks the quiesced workloads are back at one ready
// replica, with no quiesce annotation left.
func exReplicasBack(ctx context.Context, t *testing.T, env *cluster.Env, ns string) {
	t.Helper()
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 1 || d.Annotations[quiesce.AnnotationReplicas] != "" {
		t.Errorf("web after failure: replicas %v annotations %v (%v), want 1 and no annotation", d.Spec.Replicas, d.Annotations, err)
	}
	st, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil || *st.Spec.Replicas != 1 || st.Annotations[quiesce.AnnotationReplicas] != "" {
		t.Errorf("db after failure: replicas %v annotations %v (%v), want 1 and no annotation", st.Spec.Replicas, st.Annotations, err)
	}
	exWaitReady(ctx, t, env, ns, "app=db", 1)
	exWaitReady(ctx, t, env, ns, "app=web", 1)
}

// chunkGate holds the platform's chunk downloads (single and batched) by
// anyone but the test's own admin client while armed.
type chunkGate struct {
	mu      sync.Mutex
	admin   string        // the Authorization value never held
	held    chan struct{} // closed when the first download is held
	release chan struct{} // closed by disarm
	open    int           // held requests whose client is still connected
}

// arm starts holding downloads; the channel closes at the first one.
func (g *chunkGate) arm(adminToken string) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.admin, g.held, g.release, g.open = "Bearer "+adminToken, make(chan struct{}), make(chan struct{}), 0
	return g.held
}

// disarm lets held downloads go on and stops holding new ones.
func (g *chunkGate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// waitClosed waits until every held download's client has gone.
func (g *chunkGate) waitClosed(ctx context.Context, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		g.mu.Lock()
		n := g.open
		g.mu.Unlock()
		if n == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (g *chunkGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunkRead := (r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/chunks/")) ||
			(r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chunks:batch"))
		g.mu.Lock()
		release := g.release
		hold := chunkRead && release != nil && r.Header.Get("Authorization") != g.admin
		if hold {
			select {
			case <-g.held:
			default:
				close(g.held)
			}
			g.open++
		}
		g.mu.Unlock()
		if hold {
			// The server notices a client that went away only once the
			// request body has been read.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			select {
			case <-release:
			case <-r.Context().Done():
			}
			g.mu.Lock()
			g.open--
			g.mu.Unlock()
			if r.Context().Err() != nil {
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
