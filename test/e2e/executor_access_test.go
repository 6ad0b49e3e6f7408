package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/access"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestAccess_ConnectsByKubeconfigAndExplicitHost reaches the cluster
// through a kubeconfig path and through an explicit host/token/CA (a
// ServiceAccount token), and says clearly when nothing is configured.
func TestAccess_ConnectsByKubeconfigAndExplicitHost(t *testing.T) {
	env := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := env.Namespace(t)

	kc, err := access.Connect(access.Config{Kubeconfig: env.Kubeconfig, Namespace: ns})
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	if _, err := kc.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || kc.Namespace != ns {
		t.Fatalf("kubeconfig client: %v (namespace %q)", err, kc.Namespace)
	}

	// A ServiceAccount bound to the documented Role.
	exBoundClient(ctx, t, env, ns, "access", nil)
	tok, err := exSAToken(ctx, env, ns, "access")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := access.Connect(access.Config{Host: env.RESTConfig.Host, Token: tok, CAData: env.RESTConfig.CAData, CAFile: env.RESTConfig.CAFile, Namespace: ns})
	if err != nil {
		t.Fatalf("explicit host: %v", err)
	}
	if _, err := ex.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("explicit host client: %v", err)
	}

	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	if _, err := access.Connect(access.Config{}); !errors.Is(err, access.ErrNoCluster) {
		t.Fatalf("no configuration: %v, want ErrNoCluster", err)
	}
}
