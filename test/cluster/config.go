// Package cluster runs a real single-node Kubernetes on this machine for the
// project's end-to-end tests: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd with runc, the kubelet, kube-proxy and CoreDNS,
// all as host processes with their state in one directory. See README.md.
package cluster

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Default versions; each is one variable the harness does not otherwise assume.
const (
	DefaultKubernetesVersion = "v1.37.2"
	DefaultEtcdVersion       = "v3.7.4"
	DefaultCoreDNSVersion    = "v1.15.0"
)

// Fixed network layout. Everything lives on this machine; no traffic leaves it.
const (
	NodeName    = "unikube"
	tapName     = "uk-node0"
	bridgeName  = "uk-cni0"
	cniNetwork  = "unikube"
	apiPort     = 16443
	etcdPort    = 23790
	etcdPeer    = 23800
	contextName = "unikube"
)

var (
	nodeIP       = netip.MustParseAddr("10.213.0.1")
	podCIDR      = netip.MustParsePrefix("10.214.0.0/24")
	serviceCIDR  = netip.MustParsePrefix("10.215.0.0/24")
	apiServiceIP = netip.MustParseAddr("10.215.0.1")
)

// Config says which versions to run and where binaries and state live.
type Config struct {
	KubernetesVersion string
	EtcdVersion       string
	CoreDNSVersion    string
	// ToolsDir caches built binaries and image tars, keyed by version.
	ToolsDir string
	// StateDir holds the running cluster: pki, configs, logs, pids, data.
	StateDir string
	// RepoRoot is the project checkout (for the nested build modules and the
	// agent image); found from the working directory when empty.
	RepoRoot string
	Log      *slog.Logger
}

// DefaultConfig reads UNIKUBE_K8S_VERSION, UNIKUBE_TOOLS_DIR and
// UNIKUBE_CLUSTER_DIR and fills in the defaults.
func DefaultConfig() Config {
	c := Config{
		KubernetesVersion: envOr("UNIKUBE_K8S_VERSION", DefaultKubernetesVersion),
		EtcdVersion:       envOr("UNIKUBE_ETCD_VERSION", DefaultEtcdVersion),
		CoreDNSVersion:    envOr("UNIKUBE_COREDNS_VERSION", DefaultCoreDNSVersion),
		ToolsDir:          os.Getenv("UNIKUBE_TOOLS_DIR"),
		StateDir:          envOr("UNIKUBE_CLUSTER_DIR", "/var/lib/unikube-cluster"),
	}
	if c.ToolsDir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		c.ToolsDir = filepath.Join(base, "unikube-state")
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *Config) complete() error {
	d := DefaultConfig()
	if c.KubernetesVersion == "" {
		c.KubernetesVersion = d.KubernetesVersion
	}
	if c.EtcdVersion == "" {
		c.EtcdVersion = d.EtcdVersion
	}
	if c.CoreDNSVersion == "" {
		c.CoreDNSVersion = d.CoreDNSVersion
	}
	if c.ToolsDir == "" {
		c.ToolsDir = d.ToolsDir
	}
	if c.StateDir == "" {
		c.StateDir = d.StateDir
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if !strings.HasPrefix(c.KubernetesVersion, "v1.") {
		return fmt.Errorf("kubernetes version %q: want the form v1.MINOR.PATCH", c.KubernetesVersion)
	}
	if c.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return err
		}
		c.RepoRoot = root
	}
	return nil
}

// FindRepoRoot walks up from the working directory to the project's go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/unikubehq/terraform-provider-unikube\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod of github.com/unikubehq/terraform-provider-unikube above the working directory; run from the checkout")
		}
		dir = parent
	}
}

// paths inside the state and tools directories.
func (c *Config) state(p ...string) string {
	return filepath.Join(append([]string{c.StateDir}, p...)...)
}
func (c *Config) k8sBin(name string) string {
	return filepath.Join(c.ToolsDir, "k8s-"+c.KubernetesVersion, "bin", name)
}
func (c *Config) etcdBin() string {
	return filepath.Join(c.ToolsDir, "etcd-"+c.EtcdVersion, "bin", "etcd")
}
func (c *Config) helperBin(name string) string {
	return filepath.Join(c.ToolsDir, "cluster-helpers", name)
}
func (c *Config) corednsBin() string {
	return filepath.Join(c.ToolsDir, "coredns-"+c.CoreDNSVersion, "bin", "coredns")
}

// KubeconfigPath is where Up writes the admin kubeconfig.
func (c *Config) KubeconfigPath() string { return c.state("kubeconfig") }
