package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeFile writes content with exactly mode, creating parent
// directories. It writes a new file (created owner-only, whatever the
// umask) and renames it over path: os.WriteFile would keep the mode of a
// file left by an earlier run, and a file it creates with a wider mode
// would be readable before a chmod narrowed it.
func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create dir for %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ownerOnlyKubeconfig narrows the admin kubeconfig of a running cluster
// to 0600 (an earlier version of the harness wrote it 0644): it holds
// cluster-admin credentials, and helm warns on every call otherwise.
func (c *Config) ownerOnlyKubeconfig() error {
	fi, err := os.Stat(c.KubeconfigPath())
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return nil //nolint:nilerr // nothing to narrow; Connect reports a missing file
	}
	if err := os.Chmod(c.KubeconfigPath(), 0o600); err != nil {
		return fmt.Errorf("make the kubeconfig %s readable by its owner only: %w", c.KubeconfigPath(), err)
	}
	return nil
}

func (c *Config) apiURL() string { return fmt.Sprintf("https://127.0.0.1:%d", apiPort) }

// kubeconfig for one client certificate in the pki dir.
func (c *Config) kubeconfig(cert string) string {
	pki := c.state("pki")
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority: %[3]s/ca.crt
users:
- name: %[1]s-%[4]s
  user:
    client-certificate: %[3]s/%[4]s.crt
    client-key: %[3]s/%[4]s.key
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s-%[4]s
current-context: %[1]s
`, contextName, c.apiURL(), pki, cert)
}

func (c *Config) writeConfigs(reg *Registry) error {
	files := map[string]string{
		c.KubeconfigPath(): c.kubeconfig("admin"),
		c.state("conf", "controller-manager.kubeconfig"): c.kubeconfig("controller-manager"),
		c.state("conf", "scheduler.kubeconfig"):          c.kubeconfig("scheduler"),
		c.state("conf", "kube-proxy.kubeconfig"):         c.kubeconfig("kube-proxy"),
		c.state("conf", "kubelet.kubeconfig"):            c.kubeconfig("kubelet-client"),
		c.state("conf", "kubelet.yaml"):                  c.kubeletConfig(),
		c.state("conf", "kube-proxy.yaml"):               c.kubeProxyConfig(),
		c.state("conf", "containerd.toml"):               c.containerdConfig(reg),
		c.state("conf", "Corefile"):                      c.corefile(),
		c.state("conf", "resolv.conf"):                   "nameserver " + nodeIP.String() + "\n",
		c.state("cni", "net.d", "10-unikube.conflist"):   c.cniConfig(),
	}
	for p, content := range files {
		if err := writeFile(p, content, 0o600); err != nil {
			return err
		}
	}
	// Every kubeconfig, the admin one included, is 0600: they hold
	// cluster credentials (the harness and its tests run as root).
	return writeFile(c.state("bin", "runc"), runcWrapper, 0o755)
}

func (c *Config) kubeletConfig() string {
	pki := c.state("pki")
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[2]s/kubelet.crt
tlsPrivateKeyFile: %[2]s/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[2]s/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [%[1]s]
clusterDomain: cluster.local
resolvConf: %[3]s
containerRuntimeEndpoint: unix://%[4]s
podLogsDir: %[5]s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
evictionPressureTransitionPeriod: 10s
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusReportFrequency: 10s
oomScoreAdj: 0
protectKernelDefaults: false
makeIPTablesUtilChains: false
`, nodeIP, pki, c.state("conf", "resolv.conf"), c.containerdSocket(), c.state("pod-logs"))
}

func (c *Config) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
oomScoreAdj: 0
iptables:
  masqueradeAll: true
  syncPeriod: 10s
  minSyncPeriod: 0s
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, c.state("conf", "kube-proxy.kubeconfig"), NodeName, podCIDR)
}

func (c *Config) containerdSocket() string { return c.state("containerd", "containerd.sock") }

// containerdConfig has the registry's credentials (the file is 0600): the
// CRI plugin of containerd 1.6 takes them from registry.configs (its
// hosts.toml has no auth), and its CA from there too.
func (c *Config) containerdConfig(reg *Registry) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
    [plugins."io.containerd.grpc.v1.cri".registry.configs.%q.auth]
      username = %q
      password = %q
    [plugins."io.containerd.grpc.v1.cri".registry.configs.%q.tls]
      ca_file = %q
    [plugins."io.containerd.grpc.v1.cri".registry.configs.%q.tls]
      ca_file = %q
`, c.state("containerd", "root"), c.state("containerd", "state"), c.containerdSocket(), c.containerdSocket()+".ttrpc",
		reg.Ref("pause:latest"), c.state("bin", "runc"), c.state("cni", "net.d"),
		reg.Host, reg.User, reg.Password, reg.Host, reg.CAFile,
		net.JoinHostPort(nodeIP.String(), strconv.Itoa(privateRegistryPort)), reg.CAFile)
}

func (c *Config) cniConfig() string {
	gw := podCIDR.Addr().Next()
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, cniNetwork, bridgeName, c.state("cni", "ipam"), podCIDR, gw)
}

func (c *Config) corefile() string {
	return fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
`, nodeIP, c.KubeconfigPath(), contextName)
}

// runcWrapper rewrites negative oomScoreAdj values (this VM refuses to lower
// oom_score_adj) in the bundle's config.json on create and in the process
// spec on exec, then runs the real runc.
const runcWrapper = `#!/bin/sh
bundle=. prev= create=0 procfile=
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle=$a ;;
    --process|-p) procfile=$a ;;
  esac
  case "$a" in
    create|run) create=1 ;;
    --bundle=*) bundle=${a#--bundle=} ;;
    --process=*) procfile=${a#--process=} ;;
  esac
  prev=$a
done
fix() { [ -f "$1" ] && sed -i -E 's/"oomScoreAdj":[[:space:]]*-[0-9]+/"oomScoreAdj":0/g' "$1"; }
[ "$create" = 1 ] && fix "$bundle/config.json"
[ -n "$procfile" ] && fix "$procfile"
exec /usr/sbin/runc "$@"
`

// argsJoin is for log lines only.
func argsJoin(a []string) string { return strings.Join(a, " ") }
