package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// debPackages are the Debian packages the cluster's host processes and the
// images need, keyed by a file that shows the package is installed.
var debPackages = map[string]string{
	"/usr/bin/containerd":                  "containerd",
	"/usr/sbin/runc":                       "runc",
	"/usr/lib/cni/bridge":                  "containernetworking-plugins",
	"/bin/busybox":                         "busybox-static",
	"/usr/sbin/iptables":                   "iptables",
	"/usr/sbin/conntrack":                  "conntrack",
	"/usr/sbin/ip":                         "iproute2",
	"/usr/lib/postgresql/15/bin/postgres":  "postgresql-15",
	"/usr/lib/postgresql/15/bin/psql":      "postgresql-client-15",
	"/usr/sbin/mariadbd":                   "mariadb-server",
	"/usr/bin/redis-server":                "redis-server",
	"/usr/share/zoneinfo/UTC":              "tzdata",
	"/usr/lib/python3.11/json/__init__.py": "libpython3.11-stdlib",
	"/usr/bin/python3":                     "python3-minimal",
}

// EnsureDebianPackages installs what is missing with apt-get (root only).
func EnsureDebianPackages(ctx context.Context, cfg Config) error {
	var missing []string
	for f, pkg := range debPackages {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cfg.Log.Info("installing Debian packages", "packages", missing)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := runEnv(ctx, env, "apt-get", "update", "-qq"); err != nil {
		return fmt.Errorf("apt-get update: %w\n%s", err, out)
	}
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)
	if out, err := runEnv(ctx, env, "apt-get", args...); err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, out)
	}
	// Packages with daemons start them; the cluster runs its own processes.
	for _, svc := range []string{"containerd", "mariadb", "redis-server"} {
		_, _ = run(ctx, "service", svc, "stop")
	}
	return nil
}

// EnsureBinaries builds etcd, the five Kubernetes commands and CoreDNS into
// the tools dir unless a previous build of the same version completed.
func EnsureBinaries(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	if err := buildEtcd(ctx, &cfg); err != nil {
		return err
	}
	if err := buildKubernetes(ctx, &cfg); err != nil {
		return err
	}
	return buildCoreDNS(ctx, &cfg)
}

var k8sCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

func buildKubernetes(ctx context.Context, cfg *Config) error {
	binDir := filepath.Dir(cfg.k8sBin("x"))
	if done(binDir) {
		return nil
	}
	v := cfg.KubernetesVersion
	modDir := filepath.Join(cfg.RepoRoot, "test", "cluster", "build", "kubernetes")
	if !moduleRequires(modDir, "k8s.io/kubernetes "+v) {
		// Another version: a generated module in the cache (go.sum made on the fly).
		var err error
		if modDir, err = generatedKubernetesModule(cfg); err != nil {
			return err
		}
	}
	minor := strings.Split(strings.TrimPrefix(v, "v1."), ".")[0]
	ld := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X", pkg+".gitVersion="+v, "-X", pkg+".gitMajor=1", "-X", pkg+".gitMinor="+minor, "-X", pkg+".gitTreeState=clean")
	}
	args := []string{"build", "-trimpath", "-ldflags", strings.Join(ld, " "), "-o", binDir + "/"}
	for _, c := range k8sCommands {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	cfg.Log.Info("building Kubernetes (about 10 minutes on an idle 2-core machine, once per version)", "version", v, "into", binDir)
	return goBuild(ctx, modDir, binDir, args)
}

func generatedKubernetesModule(cfg *Config) (string, error) {
	v := cfg.KubernetesVersion
	staging := "v0." + strings.TrimPrefix(v, "v1.")
	dir := filepath.Join(cfg.ToolsDir, "k8s-"+v, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create build module: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "module unikube.local/k8sbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", v)
	for _, m := range stagingModules {
		fmt.Fprintf(&b, "\tk8s.io/%s => k8s.io/%s %s\n", m, m, staging)
	}
	b.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write build module: %w", err)
	}
	return dir, nil
}

// stagingModules are the ./staging replaces of k8s.io/kubernetes (v1.37);
// a module the list lacks fails the build with "missing go.sum entry" or a
// version mismatch, so a new minor may need an entry added here.
var stagingModules = []string{"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
	"cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers", "controller-manager",
	"cri-api", "cri-client", "cri-streaming", "csi-translation-lib", "dynamic-resource-allocation", "endpointslice",
	"externaljwt", "kms", "kube-aggregator", "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl",
	"kubelet", "metrics", "mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin",
	"sample-controller", "streaming"}

func buildEtcd(ctx context.Context, cfg *Config) error {
	binDir := filepath.Dir(cfg.etcdBin())
	if done(binDir) {
		return nil
	}
	modDir := filepath.Join(cfg.RepoRoot, "test", "cluster", "build", "etcd")
	if !moduleRequires(modDir, "go.etcd.io/etcd/server/v3 "+cfg.EtcdVersion) {
		modDir = filepath.Join(cfg.ToolsDir, "etcd-"+cfg.EtcdVersion, "src")
		mod := fmt.Sprintf("module unikube.local/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n", cfg.EtcdVersion)
		if err := os.MkdirAll(modDir, 0o755); err != nil {
			return fmt.Errorf("create etcd build module: %w", err)
		}
		if err := os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(mod), 0o644); err != nil {
			return fmt.Errorf("write etcd build module: %w", err)
		}
	}
	cfg.Log.Info("building etcd (a few minutes, once per version)", "version", cfg.EtcdVersion)
	return goBuild(ctx, modDir, binDir, []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", cfg.etcdBin(), "go.etcd.io/etcd/server/v3"})
}

func buildCoreDNS(ctx context.Context, cfg *Config) error {
	binDir := filepath.Dir(cfg.corednsBin())
	if done(binDir) {
		return nil
	}
	cfg.Log.Info("building CoreDNS (once per version)", "version", cfg.CoreDNSVersion)
	return goBuild(ctx, cfg.ToolsDir, binDir, []string{"install", "-trimpath", "-ldflags", "-s -w", "github.com/coredns/coredns@" + cfg.CoreDNSVersion})
}

// done reports whether a build into binDir completed (it writes .complete last).
func done(binDir string) bool {
	_, err := os.Stat(filepath.Join(binDir, ".complete"))
	return err == nil
}

func moduleRequires(modDir, req string) bool {
	b, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	return err == nil && bytes.Contains(b, []byte("require "+req))
}

func goBuild(ctx context.Context, dir, binDir string, args []string) error {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+binDir, "GOWORK=off")
	if args[0] == "build" {
		// Nested modules resolve their requirements on first use.
		env = append(env, "GOFLAGS=-mod=mod")
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", binDir, err)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	if err := os.WriteFile(filepath.Join(binDir, ".complete"), []byte(time.Since(start).String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("mark build complete: %w", err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runEnv(ctx, nil, name, args...)
}

func runEnv(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("%s %s: exit %d: %s", name, strings.Join(args, " "), ee.ExitCode(), bytes.TrimSpace(out))
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// buildHelpers builds the harness's own small host commands (Go's build
// cache makes this quick after the first time).
func buildHelpers(ctx context.Context, cfg *Config) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", cfg.helperBin("hostpath-permissions"), "./test/cluster/cmd/hostpath-permissions")
	cmd.Dir = cfg.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build hostpath-permissions: %w\n%s", err, out)
	}
	return nil
}
