package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster/images"
)

// components in start order; Down stops them in reverse (kubelet first).
var componentOrder = []string{"containerd", registryComponent, privateRegistryComponent, "hostpath-permissions", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"}

// hostPathBase is where the in-tree host-path provisioner makes volumes.
const hostPathBase = "/tmp/hostpath_pv"

// Info describes a running cluster.
type Info struct {
	Kubeconfig string
	Server     string
	Version    string
	// Reused is true when Up found the cluster already running.
	Reused bool
	Took   time.Duration
}

// CheckHost says why this machine cannot run the local cluster, or nil.
func CheckHost() error {
	if os.Geteuid() != 0 {
		return errors.New("the local cluster needs root (network devices, mounts, containerd); run as root or set KUBECONFIG_E2E to an existing cluster")
	}
	for _, f := range []string{"/dev/net/tun", "/proc/sys/net/ipv4/ip_forward"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the local cluster needs %s: %w", f, err)
		}
	}
	return nil
}

// Up builds what is missing, starts the cluster (or finds it running) and
// waits until the node is Ready and cluster DNS answers inside a pod.
func Up(ctx context.Context, cfg Config) (*Info, error) {
	start := time.Now()
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	if err := CheckHost(); err != nil {
		return nil, err
	}
	// One Up at a time on this machine: parallel test packages must not run
	// apt-get or the 7-minute Kubernetes build twice.
	unlock, err := lockFile(ctx, filepath.Join(cfg.StateDir, "ops.lock"), syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := EnsureDebianPackages(ctx, cfg); err != nil {
		return nil, err
	}
	if err := EnsureBinaries(ctx, cfg); err != nil {
		return nil, err
	}
	cfg.Log.Info("binaries ready", "after", time.Since(start).Round(time.Millisecond))
	if err := buildHelpers(ctx, &cfg); err != nil {
		return nil, err
	}
	b := &images.Builder{ToolsDir: cfg.ToolsDir, RepoRoot: cfg.RepoRoot, Log: cfg.Log}
	imgs, err := b.Build(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("images ready", "after", time.Since(start).Round(time.Millisecond))
	healthErr := cfg.healthy(ctx)
	if healthErr == nil {
		// Images may have changed since the cluster started (a rebuilt agent).
		reg, err := LocalRegistry(cfg)
		if err != nil {
			return nil, err
		}
		if err := reg.pushImages(ctx, &cfg, imgs); err != nil {
			return nil, err
		}
		if err := cfg.ownerOnlyKubeconfig(); err != nil {
			return nil, err
		}
		return &Info{Kubeconfig: cfg.KubeconfigPath(), Server: cfg.apiURL(), Version: cfg.KubernetesVersion, Reused: true, Took: time.Since(start)}, nil
	}
	cfg.Log.Info("starting the cluster", "because", healthErr.Error())
	cfg.down(ctx)
	if err := cfg.up(ctx, imgs); err != nil {
		return nil, fmt.Errorf("%w (logs in %s; `make cluster-down` cleans up)", err, cfg.state("logs"))
	}
	return &Info{Kubeconfig: cfg.KubeconfigPath(), Server: cfg.apiURL(), Version: cfg.KubernetesVersion, Took: time.Since(start)}, nil
}

func (c *Config) up(ctx context.Context, imgs []images.Image) error {
	t0 := time.Now()
	phase := func(what string) { c.Log.Info(what, "after", time.Since(t0).Round(time.Millisecond)) }
	for _, d := range []string{"logs", "pids", "etcd", "conf", "pki", "kubelet", "pod-logs", "cni", "containerd/state", "bin"} {
		_ = os.RemoveAll(c.state(d))
	}
	if err := os.MkdirAll(c.state("containerd", "root"), 0o711); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := writePKI(c.state("pki")); err != nil {
		return err
	}
	reg, err := c.registry(registryComponent)
	if err != nil {
		return err
	}
	if err := c.writeConfigs(reg); err != nil {
		return err
	}
	if err := c.setupNetwork(ctx); err != nil {
		return err
	}
	// The registries listen on the node address, so they start after the
	// network; the images are pushed while the control plane comes up.
	for _, r := range []string{registryComponent, privateRegistryComponent} {
		if _, err := c.startRegistry(ctx, r); err != nil {
			return err
		}
	}
	phase("registries ready")
	pki := func(f string) string { return c.state("pki", f) }
	// containerd and the image push do not need the API server: run them
	// while etcd and the API server come up.
	for _, p := range []component{
		{name: "containerd", path: "/usr/bin/containerd", args: []string{"--config", c.state("conf", "containerd.toml")}},
		{name: "hostpath-permissions", path: c.helperBin("hostpath-permissions"), args: []string{hostPathBase}},
	} {
		if err := c.start(p); err != nil {
			return err
		}
	}
	pushed := make(chan error, 1)
	go func() {
		err := c.waitFor(ctx, "containerd socket", "containerd", 30*time.Second, func(ctx context.Context) error {
			_, err := c.ctr(ctx, "version")
			return err
		})
		if err == nil {
			err = reg.pushImages(ctx, c, imgs)
		}
		pushed <- err
	}()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if err := c.start(component{name: "etcd", path: c.etcdBin(), args: []string{
		"--name", "unikube", "--data-dir", c.state("etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "unikube=" + peerURL, "--unsafe-no-fsync", "--log-level", "warn",
	}}); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "etcd health", "etcd", 30*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, etcdURL+"/health")
	}); err != nil {
		return err
	}
	phase("etcd ready")
	if err := c.start(component{name: "kube-apiserver", path: c.k8sBin("kube-apiserver"), args: []string{
		"--etcd-servers", etcdURL,
		"--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(apiPort), "--advertise-address", nodeIP.String(),
		"--service-cluster-ip-range", serviceCIDR.String(),
		"--client-ca-file", pki("ca.crt"), "--tls-cert-file", pki("apiserver.crt"), "--tls-private-key-file", pki("apiserver.key"),
		"--service-account-key-file", pki("sa.pub"), "--service-account-signing-key-file", pki("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
		"--kubelet-client-certificate", pki("apiserver-kubelet-client.crt"), "--kubelet-client-key", pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority", pki("ca.crt"), "--kubelet-preferred-address-types", "InternalIP",
		"--allow-privileged=true", "--profiling=false", "--endpoint-reconciler-type", "lease",
	}}); err != nil {
		return err
	}
	cs, err := c.client()
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver ready", "kube-apiserver", 90*time.Second, func(ctx context.Context) error {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}
	phase("kube-apiserver ready")
	cm := c.state("conf", "controller-manager.kubeconfig")
	sched := c.state("conf", "scheduler.kubeconfig")
	for _, p := range []component{
		{name: "kube-controller-manager", path: c.k8sBin("kube-controller-manager"), args: []string{
			"--kubeconfig", cm, "--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
			"--bind-address", "127.0.0.1", "--secure-port", "10357", "--cert-dir", c.state("pki", "controller-manager-serving"),
			"--leader-elect=false", "--use-service-account-credentials=true",
			"--service-account-private-key-file", pki("sa.key"), "--root-ca-file", pki("ca.crt"),
			"--cluster-signing-cert-file", pki("ca.crt"), "--cluster-signing-key-file", pki("ca.key"),
			"--enable-hostpath-provisioner=true", "--allocate-node-cidrs=false",
			"--service-cluster-ip-range", serviceCIDR.String(), "--profiling=false",
		}},
		{name: "kube-scheduler", path: c.k8sBin("kube-scheduler"), args: []string{
			"--kubeconfig", sched, "--authentication-kubeconfig", sched, "--authorization-kubeconfig", sched,
			"--bind-address", "127.0.0.1", "--secure-port", "10359", "--cert-dir", c.state("pki", "scheduler-serving"),
			"--leader-elect=false", "--profiling=false",
		}},
	} {
		if err := c.start(p); err != nil {
			return err
		}
	}
	if err := <-pushed; err != nil {
		return err
	}
	phase("containerd ready, images pushed to the registry")
	for _, p := range []component{
		{name: "kubelet", path: c.k8sBin("kubelet"), args: []string{
			"--config", c.state("conf", "kubelet.yaml"), "--kubeconfig", c.state("conf", "kubelet.kubeconfig"),
			"--hostname-override", NodeName, "--node-ip", nodeIP.String(), "--root-dir", c.state("kubelet"),
			"--cert-dir", c.state("pki", "kubelet-dir"),
		}},
		{name: "kube-proxy", path: c.k8sBin("kube-proxy"), args: []string{"--config", c.state("conf", "kube-proxy.yaml")}},
		{name: "coredns", path: c.corednsBin(), args: []string{"-conf", c.state("conf", "Corefile")}},
	} {
		if err := c.start(p); err != nil {
			return err
		}
	}
	if err := c.waitFor(ctx, "default StorageClass", "", 30*time.Second, func(ctx context.Context) error {
		return ensureStorageClass(ctx, cs)
	}); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "node Ready", "kubelet", 90*time.Second, func(ctx context.Context) error {
		return nodeReady(ctx, cs)
	}); err != nil {
		return err
	}
	phase("node Ready")
	if err := c.probeDNS(ctx, cs); err != nil {
		return err
	}
	phase("DNS probe pod resolved kubernetes.default.svc.cluster.local")
	return nil
}

func (c *Config) client() (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", c.KubeconfigPath(), err)
	}
	rc.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cs, nil
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func ensureStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	del := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "standard", Annotations: map[string]string{
			"storageclass.kubernetes.io/is-default-class": "true",
		}},
		Provisioner:       "kubernetes.io/host-path",
		ReclaimPolicy:     &del,
		VolumeBindingMode: &mode,
	}
	_, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func nodeReady(ctx context.Context, cs kubernetes.Interface) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not ready: %s", NodeName, cond.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", NodeName)
}

// probeDNS runs a pod that resolves the API server's Service name: proof
// that scheduling, containerd, CNI, kube-proxy and CoreDNS all work.
func (c *Config) probeDNS(ctx context.Context, cs kubernetes.Interface) error {
	ns := "kube-system"
	name := "unikube-dns-probe"
	zero := int64(0)
	f := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  &f,
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "probe", Image: registryHost() + "/busybox:latest", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "for i in $(seq 120); do nslookup kubernetes.default.svc.cluster.local >/dev/null 2>&1 && exit 0; sleep 0.5; done; nslookup kubernetes.default.svc.cluster.local; exit 1"},
			}},
		},
	}
	defer func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	return c.waitFor(ctx, "DNS probe pod", "kubelet", 120*time.Second, func(ctx context.Context) error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err == nil {
				err = errors.New("probe pod created")
			}
			return err
		}
		if err != nil {
			return err
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return nil
		case corev1.PodFailed:
			logs, _ := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
			_ = cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			return fmt.Errorf("probe pod failed: %s", strings.TrimSpace(string(logs)))
		}
		return fmt.Errorf("probe pod %s", p.Status.Phase)
	})
}

// healthy reports nil when every component runs and the node is Ready.
func (c *Config) healthy(ctx context.Context) error {
	recs := map[string]pidRecord{}
	for _, r := range c.records() {
		recs[r.name] = r
	}
	for _, n := range componentOrder {
		r, ok := recs[n]
		if !ok || !r.alive() {
			return fmt.Errorf("%s is not running", n)
		}
	}
	cs, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w", err)
	}
	// A cluster an earlier checkout started on another version is replaced,
	// so a version bump takes effect without a manual cluster-down.
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("kube-apiserver version: %w", err)
	}
	if v.GitVersion != c.KubernetesVersion {
		return fmt.Errorf("the running cluster is Kubernetes %s, want %s", v.GitVersion, c.KubernetesVersion)
	}
	return nodeReady(ctx, cs)
}

// ctr runs containerd's CLI against the cluster's own containerd.
func (c *Config) ctr(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, "ctr", append([]string{"--address", c.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
}

// Down stops what Up started and removes its devices, iptables chains and
// mounts. Safe when nothing is running.
func Down(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		// Only root can have started it; there is nothing to stop.
		cfg.Log.Info("cluster down: not root, so no local cluster of this user to stop")
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(cfg.StateDir, "ops.lock"), syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if errs := cfg.down(ctx); len(errs) > 0 {
		return fmt.Errorf("cluster down: %w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) down(ctx context.Context) []error {
	ctx = context.WithoutCancel(ctx) // a half-done tear-down is worse than a slow one
	c.stop(ctx, "kubelet", 10*time.Second)
	if c.componentAlive("containerd") {
		c.removeContainers(ctx)
	}
	for _, pid := range processesUsing("-address " + c.containerdSocket()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killCgroup()
	for i := len(componentOrder) - 1; i >= 0; i-- {
		c.stop(ctx, componentOrder[i], 5*time.Second)
	}
	for _, r := range c.records() { // anything else a pid file names
		c.stop(ctx, r.name, 5*time.Second)
	}
	var errs []error
	errs = append(errs, unmountAll(c.StateDir)...)
	errs = append(errs, c.cleanupNetwork(ctx)...)
	// The containerd content store (containerd/root) stays: it is the image cache.
	for _, d := range []string{"etcd", "kubelet", "pod-logs", "cni", "containerd/state", "pids"} {
		if err := os.RemoveAll(c.state(d)); err != nil {
			errs = append(errs, err)
		}
	}
	// Dynamic volumes of the host-path provisioner.
	_ = os.RemoveAll(hostPathBase)
	return errs
}

// removeContainers deletes every task and container of the k8s.io namespace
// so containerd unmounts their root filesystems and keeps no records.
func (c *Config) removeContainers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := c.ctr(ctx, "containers", "ls", "-q")
	if err != nil {
		return
	}
	ids := strings.Fields(string(out))
	for _, id := range ids {
		_, _ = c.ctr(ctx, "tasks", "kill", "--all", "--signal", "SIGKILL", id)
	}
	for _, id := range ids {
		_, _ = c.ctr(ctx, "tasks", "delete", "--force", id)
		_, _ = c.ctr(ctx, "containers", "delete", id)
	}
}

// Status describes each component and the node.
func Status(ctx context.Context, cfg Config) (string, error) {
	if err := cfg.complete(); err != nil {
		return "", err
	}
	var b strings.Builder
	recs := map[string]pidRecord{}
	for _, r := range cfg.records() {
		recs[r.name] = r
	}
	for _, n := range componentOrder {
		r, ok := recs[n]
		switch {
		case !ok:
			fmt.Fprintf(&b, "%-24s not started\n", n)
		case r.alive():
			fmt.Fprintf(&b, "%-24s running (pid %d)\n", n, r.pid)
		default:
			fmt.Fprintf(&b, "%-24s exited (log %s)\n", n, cfg.state("logs", n+".log"))
		}
	}
	if err := cfg.healthy(ctx); err != nil {
		fmt.Fprintf(&b, "cluster: not ready: %v\n", err)
	} else {
		fmt.Fprintf(&b, "cluster: ready, kubeconfig %s\n", cfg.KubeconfigPath())
	}
	return b.String(), nil
}

// lockFile takes a flock on path; the returned func releases it.
func lockFile(ctx context.Context, path string, how int) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
