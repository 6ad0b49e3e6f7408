package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is a reachable Kubernetes cluster for a test.
type Env struct {
	// Kubeconfig is the path of a kubeconfig for the cluster.
	Kubeconfig string
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	// External is true when KUBECONFIG_E2E named the cluster (kind, a CI
	// cluster, ...): tests must not assume the local harness's images.
	External bool
}

// shared holds the one Env of this test process: every test of a package
// (and every package sharing the process) reuses it. A package-level value
// is the point here: the cluster is a process-wide resource.
var shared struct {
	mu  sync.Mutex
	env *Env
}

// Require returns a cluster for the test: the one KUBECONFIG_E2E names when
// set, else the local cluster, started on first use (or reused if it runs).
// It skips the test, with the reason, when neither is possible (not root).
//
// While the process lives it holds a shared lock that `cluster down` and
// the up/down test wait for, so no package tears down a cluster another
// package is using. The cluster stays up after the tests for fast reuse;
// `make test` and `make e2e` run `make cluster-down` at the end.
func Require(t testing.TB) *Env {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.env != nil {
		return shared.env
	}
	env, err := require(t)
	if err != nil {
		t.Fatalf("e2e cluster: %v", err)
	}
	shared.env = env
	return env
}

func require(t testing.TB) (*Env, error) {
	if kc := os.Getenv("KUBECONFIG_E2E"); kc != "" {
		env, err := envFor(kc)
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG_E2E=%s: %w", kc, err)
		}
		env.External = true
		return env, nil
	}
	if err := CheckHost(); err != nil {
		if os.Getenv("UNIKUBE_TESTENV_REQUIRE") == "1" {
			// `make test` wants every real service, so a missing one is a failure.
			return nil, err
		}
		t.Skipf("no e2e cluster: %v", err)
	}
	cfg := DefaultConfig()
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	// Cold start builds Kubernetes (~7 min on 2 cores) once per machine.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	// Held (never released) until this process exits.
	if _, err := lockFile(ctx, useLockPath(cfg), syscall.LOCK_SH); err != nil {
		return nil, err
	}
	info, err := Up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Logf("e2e cluster: Kubernetes %s (reused=%v, %s), KUBECONFIG=%s", info.Version, info.Reused, info.Took.Round(time.Millisecond), info.Kubeconfig)
	return envFor(info.Kubeconfig)
}

func useLockPath(cfg Config) string { return filepath.Join(cfg.StateDir, "use.lock") }

// LockExclusive waits until no test process uses the local cluster and
// keeps others from starting to use it until the returned func is called.
func LockExclusive(ctx context.Context, cfg Config) (func(), error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	return lockFile(ctx, useLockPath(cfg), syscall.LOCK_EX)
}

func envFor(kubeconfig string) (*Env, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return nil, fmt.Errorf("cluster not ready: %w", err)
	}
	return &Env{Kubeconfig: kubeconfig, RESTConfig: rc, Client: cs}, nil
}

// Namespace creates a fresh namespace for the test and deletes it (without
// waiting) when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "e2e-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": "unikube-e2e"}}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// Pods need the namespace's default ServiceAccount, which a controller adds.
	for ctx.Err() == nil {
		if _, err := e.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if !apierrors.IsNotFound(err) {
			t.Fatalf("namespace %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

// Image returns the image reference to use for one of the harness images
// ("postgres", "busybox", ...): the value of E2E_IMAGE_<NAME> (e.g.
// E2E_IMAGE_POSTGRES) when set, else on the local cluster the image in its
// registry (10.213.0.1:5000/postgres:15, pushed by `cluster up`), and on an
// external cluster the tar's own name (localhost/postgres:15, for `kind
// load image-archive`).
func (e *Env) Image(name string) string {
	if v := os.Getenv("E2E_IMAGE_" + envName(name)); v != "" {
		return v
	}
	refs := map[string]string{
		"pause": "pause:latest", "busybox": "busybox:latest", "unikube-agent": "unikube-agent:dev",
		"unikube-platform": "unikube-platform:dev",
		"postgres":         "postgres:15", "mariadb": "mariadb:10.11", "redis": "redis:7",
		"python": "python:3",
		// Built and pushed on demand: cluster.PushImages(ctx, cfg, "opensearch").
		"opensearch": "opensearch:2.19.6",
	}
	repo, ok := refs[name]
	if !ok {
		return ""
	}
	if e.External {
		return "localhost/" + repo
	}
	return registryHost() + "/" + repo
}

// Registry is the local cluster's registry (the one containerd has the
// credentials of); the test is skipped on an external cluster.
func (e *Env) Registry(t testing.TB) *Registry {
	t.Helper()
	return e.registry(t, LocalRegistry)
}

// PrivateRegistry is the local cluster's second registry, whose
// credentials containerd does not have: pods pull from it only with an
// imagePullSecret. The test is skipped on an external cluster.
func (e *Env) PrivateRegistry(t testing.TB) *Registry {
	t.Helper()
	return e.registry(t, PrivateRegistry)
}

func (e *Env) registry(t testing.TB, get func(Config) (*Registry, error)) *Registry {
	t.Helper()
	if e.External {
		t.Skip("KUBECONFIG_E2E names an external cluster: the local cluster's registries are not there")
	}
	r, err := get(DefaultConfig())
	if err != nil {
		t.Fatalf("e2e cluster: %v", err)
	}
	return r
}

func envName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
		case c == '-':
			b[i] = '_'
		}
	}
	return string(b)
}
