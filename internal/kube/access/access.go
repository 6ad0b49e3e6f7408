// Package access builds a Kubernetes client from a kubeconfig (path and
// context), from an explicit host/token/CA, or from the in-cluster config.
package access

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config says how to reach a cluster. Exactly one way is used, in this
// order: Host (explicit), InCluster, then the kubeconfig (Kubeconfig, or
// $KUBECONFIG / ~/.kube/config when empty) with Context.
type Config struct {
	Kubeconfig string
	Context    string
	Namespace  string // default: the kubeconfig context's namespace, else "default"

	Host     string // https://host:port
	Token    string // bearer token for Host
	CAData   []byte // PEM CA for Host
	CAFile   string
	Insecure bool // skip TLS verification (tests only)

	InCluster bool
}

// Cluster is a ready client with its namespace.
type Cluster struct {
	REST      *rest.Config
	Client    kubernetes.Interface
	Namespace string
}

// ErrNoCluster says no way of reaching a cluster was configured.
var ErrNoCluster = errors.New("no Kubernetes cluster configured")

// Connect builds the REST config and client.
func Connect(cfg Config) (*Cluster, error) {
	rc, ns, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Namespace != "" {
		ns = cfg.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	Tune(rc)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", rc.Host, err)
	}
	return &Cluster{REST: rc, Client: cs, Namespace: ns}, nil
}

func restConfig(cfg Config) (*rest.Config, string, error) {
	switch {
	case cfg.Host != "":
		rc := &rest.Config{Host: cfg.Host, BearerToken: cfg.Token}
		rc.TLSClientConfig = rest.TLSClientConfig{CAData: cfg.CAData, CAFile: cfg.CAFile, Insecure: cfg.Insecure}
		return rc, "", nil
	case cfg.InCluster:
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("in-cluster config (is this running in a pod with a ServiceAccount?): %w", err)
		}
		return rc, "", nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cfg.Context})
	rc, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", fmt.Errorf("%w: set a kubeconfig path, KUBECONFIG, host/token, or in-cluster", ErrNoCluster)
		}
		return nil, "", fmt.Errorf("kubeconfig (context %q): %w", cfg.Context, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
	}
	return rc, ns, nil
}

// Tune raises client-go's default rate limit (5 requests/s, bursts of 10)
// unless the config sets one: an apply checks ~40 permissions and polls
// its Jobs, and at 5/s it waited on its own client for seconds.
func Tune(rc *rest.Config) {
	if rc.QPS == 0 && rc.Burst == 0 && rc.RateLimiter == nil {
		rc.QPS, rc.Burst = 50, 100
	}
}
