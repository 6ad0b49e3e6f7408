// Package quickstart runs the README's first command end to end: it builds
// the binaries, starts the platform server in the background, finds or
// starts a cluster, installs the `helm state` plugin and the shop chart,
// seeds the release with `terraform apply`, and shows what landed. Down
// undoes all of it. Both are idempotent: a second Up reuses what runs.
//
// scripts/quickstart.sh and scripts/quickstart-down.sh run it through
// cmd/quickstart; test/e2e/quickstart_test.go runs the same steps.
package quickstart

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/release/snapshot"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// HelmVersion is installed when no helm is on PATH.
const HelmVersion = "v3.16.4"

// GoreleaserModule is installed when no goreleaser is on PATH (make tools
// installs the same into the tools cache).
const GoreleaserModule = "github.com/goreleaser/goreleaser/v2@v2.17.0"

// Config says where the quickstart lives and what it installs.
type Config struct {
	// Root is the repository root; Dir the quickstart's own state
	// (default Root/.quickstart).
	Root string
	Dir  string
	// Namespace and Release of the shop chart.
	Namespace string
	Release   string
	// Port the platform listens on: exactly this one when set (a server
	// that is not this checkout's there is an error); 0: the port an
	// earlier run recorded, else DefaultPort, moving on to a free one
	// when another checkout's platform (or anything else) holds it.
	Port int
	// Kubeconfig of a cluster to use; empty or unreachable: the local
	// harness (test/cluster) is started.
	Kubeconfig string
	// PlatformURLInCluster overrides the URL agent pods use to reach the
	// platform (default: the node address on the local harness, this host's
	// outbound address elsewhere).
	PlatformURLInCluster string
	// AgentImage is the agent image the plugin and the provider use
	// (QUICKSTART_AGENT_IMAGE, else UNIKUBE_AGENT_IMAGE). Default: the
	// harness's own agent on the local cluster (a development build, like
	// the quickstart's binaries); on kind, k3d and minikube the quickstart
	// builds and loads this checkout's (see package imageload); elsewhere
	// the clients' version-matched default.
	AgentImage string
	// KeepCluster makes Down leave a cluster it started running.
	KeepCluster bool
	// Out gets the progress and the summary; commands' output too.
	Out io.Writer
}

// FromEnv is the configuration scripts/quickstart.sh uses: the repository
// root and QUICKSTART_* / KUBECONFIG from the environment.
func FromEnv(getenv func(string) string) (Config, error) {
	root, err := cluster.FindRepoRoot()
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Root:                 root,
		Dir:                  getenv("QUICKSTART_DIR"),
		Namespace:            or(getenv("QUICKSTART_NAMESPACE"), "shop-quickstart"),
		Release:              or(getenv("QUICKSTART_RELEASE"), "shop"),
		Kubeconfig:           getenv("KUBECONFIG"),
		PlatformURLInCluster: getenv("QUICKSTART_PLATFORM_URL_IN_CLUSTER"),
		AgentImage:           or(getenv("QUICKSTART_AGENT_IMAGE"), getenv("UNIKUBE_AGENT_IMAGE")),
		KeepCluster:          getenv("QUICKSTART_KEEP_CLUSTER") == "1",
		Out:                  os.Stdout,
	}
	if p := getenv("QUICKSTART_PORT"); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil {
			return Config{}, fmt.Errorf("QUICKSTART_PORT=%q: %w", p, err)
		}
	}
	return c, nil
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func (c *Config) defaults() {
	if c.Dir == "" {
		c.Dir = filepath.Join(c.Root, ".quickstart")
	}
	if c.Namespace == "" {
		c.Namespace = "shop-quickstart"
	}
	if c.Release == "" {
		c.Release = "shop"
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// saved is what Up records for Down and for the user's shell (env file).
type saved struct {
	Kubeconfig     string `json:"kubeconfig"`
	Local          bool   `json:"local"`
	ClusterStarted bool   `json:"cluster_started"`
	Endpoint       string `json:"endpoint"`
	// Port the platform of this checkout listens on (kept across runs).
	Port int `json:"port,omitempty"`
	// AgentImage the agent Jobs run, when not the provider's default.
	AgentImage string `json:"agent_image,omitempty"`
	Namespace  string `json:"namespace"`
	Release    string `json:"release"`
}

// Result is what Up found in the seeded release.
type Result struct {
	Endpoint   string
	Kubeconfig string
	Env        string // file to source for the README's tour
	Rows       map[string]int
	Files      []string
	RedisKeys  int
	History    string
	Steps      []Step
}

// Step is one timed step of Up or Down.
type Step struct {
	Name string
	Took time.Duration
}

type run struct {
	cfg   Config
	st    saved
	kube  *Kube
	env   []string
	token string
	steps []Step
	// snap is the GoReleaser snapshot the plugin and the provider are
	// installed from.
	snap *snapshot.Result
}

func (r *run) step(name string, fn func() error) error {
	fmt.Fprintf(r.cfg.Out, "\n==> %s\n", name)
	start := time.Now()
	err := fn()
	took := time.Since(start)
	r.steps = append(r.steps, Step{Name: name, Took: took})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(r.cfg.Out, "    done in %s\n", took.Round(100*time.Millisecond))
	return nil
}

func (r *run) binDir() string   { return filepath.Join(r.cfg.Root, "bin") }
func (r *run) toolsBin() string { return filepath.Join(cluster.DefaultConfig().ToolsDir, "bin") }

// command runs name with the quickstart's environment, its output going to
// Out (or captured when out is non-nil).
func (r *run) command(ctx context.Context, dir string, out io.Writer, name string, args ...string) error {
	// Resolved with the commands' PATH (bin/, the tools cache), not ours.
	bin := name
	if p, ok := r.lookPath(name); ok {
		bin = p
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.cfg.Out, r.cfg.Out
	if out != nil {
		cmd.Stdout = out
	}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func (r *run) output(ctx context.Context, name string, args ...string) (string, error) {
	var b strings.Builder
	err := r.command(ctx, r.cfg.Root, &b, name, args...)
	return b.String(), err
}

// setEnv sets one variable of the commands' environment.
func (r *run) setEnv(k, v string) {
	prefix := k + "="
	for i, kv := range r.env {
		if strings.HasPrefix(kv, prefix) {
			r.env[i] = prefix + v
			return
		}
	}
	r.env = append(r.env, prefix+v)
}

func (r *run) getEnv(k string) string {
	for _, kv := range r.env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

func newRun(cfg Config) *run {
	cfg.defaults()
	r := &run{cfg: cfg, env: os.Environ()}
	r.setEnv("PATH", r.binDir()+string(os.PathListSeparator)+r.toolsBin()+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Helm's plugins (and the downloads of plugin archives) stay in the
	// quickstart's directory. Helm 3 installs a plugin from a URL, and Helm 4
	// from an archive or a directory, into $HELM_DATA_HOME/plugins whatever
	// HELM_PLUGINS says, so both name the same directory.
	r.setEnv("HELM_DATA_HOME", filepath.Join(cfg.Dir, "helm"))
	r.setEnv("HELM_PLUGINS", filepath.Join(cfg.Dir, "helm", "plugins"))
	r.setEnv("HELM_CACHE_HOME", filepath.Join(cfg.Dir, "helm", "cache"))
	r.setEnv("UNIKUBE_TOOLS_DIR", cluster.DefaultConfig().ToolsDir)
	return r
}

// Up runs the quickstart. It returns what it found in the seeded release.
func Up(ctx context.Context, cfg Config) (*Result, error) {
	r := newRun(cfg)
	cfg = r.cfg
	total := time.Now()
	if err := privateDir(cfg.Dir); err != nil {
		return nil, err
	}
	if prev, err := r.load(); err == nil {
		r.st.Port = prev.Port // this checkout's port, chosen by an earlier run
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"build the platform server", r.build},
		{"tools: helm, goreleaser (builds the release archives) and redis-server (reads the seed's .rdb)", r.tools},
		{"release archives: a GoReleaser snapshot of the provider and the helm plugin for this machine (.quickstart/dist)", r.release},
		{"cluster", r.cluster},
		{"platform server (background, embedded SQLite + files in .quickstart/platform)", r.platform},
		{"helm plugin install <URL of the plugin's release archive> into " + r.getEnv("HELM_PLUGINS") + ", with no Go on PATH", r.plugin},
		{"helm install " + cfg.Release + " (examples/quickstart/chart) into namespace " + cfg.Namespace, r.helmInstall},
		{"terraform init && terraform apply (examples/quickstart/terraform; the provider's release zip from a filesystem mirror; no Go on PATH)", r.terraform},
	}
	for _, s := range steps {
		if err := r.step(s.name, func() error { return s.fn(ctx) }); err != nil {
			return nil, err
		}
	}
	res := &Result{Endpoint: r.st.Endpoint, Kubeconfig: r.st.Kubeconfig, Env: filepath.Join(cfg.Dir, "env")}
	if err := r.step("what landed", func() error { return r.show(ctx, res) }); err != nil {
		return nil, err
	}
	res.Steps = r.steps
	r.summary(res, time.Since(total))
	return res, nil
}

func (r *run) build(ctx context.Context) error {
	if err := os.MkdirAll(r.binDir(), 0o755); err != nil {
		return err
	}
	r.setEnv("CGO_ENABLED", "0")
	defer r.setEnv("CGO_ENABLED", os.Getenv("CGO_ENABLED"))
	// The provider and the plugin come from their release archives (the
	// release step); only the platform server, which the quickstart runs
	// itself, is built here.
	return r.command(ctx, r.cfg.Root, nil, "go", "build", "-o", r.binDir()+"/", "./cmd/unikube-platform")
}

// release builds the provider's and the plugin's release archives for this
// machine with GoReleaser from .goreleaser.yaml: what a release ships, and
// what users install.
func (r *run) release(ctx context.Context) error {
	goreleaser, ok := r.lookPath("goreleaser")
	if !ok {
		return errors.New("goreleaser is not installed: run make tools (it installs it into " + r.toolsBin() + ") and run again")
	}
	ids := []string{"provider"}
	if r.hasPluginSource() {
		ids = append(ids, "helm-state")
	}
	snap, err := snapshot.Build(ctx, snapshot.Options{
		Root: r.cfg.Root, Dist: filepath.Join(r.cfg.Dir, "dist"), IDs: ids, HostOnly: true,
		// Development builds: the agent handshake accepts only an agent of
		// the same version, and the quickstart's agents are development
		// builds too.
		Goreleaser: goreleaser, Env: append(slices.Clone(r.env), "UNIKUBE_BUILDINFO_VERSION="+buildinfo.Dev),
	})
	if err != nil {
		return err
	}
	r.snap = snap
	fmt.Fprintf(r.cfg.Out, "    %s in %s\n", snap.Version, relTo(r.cfg.Root, snap.Dist))
	return nil
}

// withoutGo runs fn with a PATH that has no go: what users install and run
// needs no Go toolchain, and a step that did would fail here.
func (r *run) withoutGo(fn func() error) error {
	path := r.getEnv("PATH")
	r.setEnv("PATH", PathWithoutGo(path))
	defer r.setEnv("PATH", path)
	return fn()
}

// PathWithoutGo is path without the directories that hold a go command.
func PathWithoutGo(path string) string {
	var keep []string
	for _, dir := range filepath.SplitList(path) {
		if st, err := os.Stat(filepath.Join(dir, "go")); err == nil && !st.IsDir() {
			continue
		}
		keep = append(keep, dir)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

func (r *run) lookPath(name string) (string, bool) {
	for _, dir := range filepath.SplitList(r.getEnv("PATH")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func (r *run) tools(ctx context.Context) error {
	if p, ok := r.lookPath("helm"); ok {
		fmt.Fprintf(r.cfg.Out, "    helm: %s\n", p)
	} else {
		fmt.Fprintf(r.cfg.Out, "    helm: go install helm.sh/helm/v3/cmd/helm@%s into %s (once)\n", HelmVersion, r.toolsBin())
		r.setEnv("GOBIN", r.toolsBin())
		r.setEnv("GOFLAGS", "")
		err := r.command(ctx, r.cfg.Root, nil, "go", "install", "helm.sh/helm/v3/cmd/helm@"+HelmVersion)
		r.setEnv("GOBIN", os.Getenv("GOBIN"))
		r.setEnv("GOFLAGS", os.Getenv("GOFLAGS"))
		if err != nil {
			return err
		}
	}
	// GoReleaser builds the provider's release zip Terraform installs.
	if p, ok := r.lookPath("goreleaser"); ok {
		fmt.Fprintf(r.cfg.Out, "    goreleaser: %s\n", p)
	} else {
		fmt.Fprintf(r.cfg.Out, "    goreleaser: go install %s into %s (once)\n", GoreleaserModule, r.toolsBin())
		r.setEnv("GOBIN", r.toolsBin())
		r.setEnv("GOFLAGS", "")
		err := r.command(ctx, r.cfg.Root, nil, "go", "install", GoreleaserModule)
		r.setEnv("GOBIN", os.Getenv("GOBIN"))
		r.setEnv("GOFLAGS", os.Getenv("GOFLAGS"))
		if err != nil {
			return err
		}
	}
	if _, ok := r.lookPath("terraform"); !ok {
		return errors.New("terraform is not on PATH: install Terraform 1.6 or newer")
	}
	if p, ok := r.lookPath("redis-server"); ok {
		fmt.Fprintf(r.cfg.Out, "    redis-server: %s\n", p)
		return nil
	}
	if _, ok := r.lookPath("apt-get"); !ok || os.Geteuid() != 0 {
		return errors.New("redis-server is not installed; the provider needs it to read the seed's cache.rdb: install it (apt-get install redis-server, brew install redis) and run again")
	}
	fmt.Fprintln(r.cfg.Out, "    redis-server: apt-get install redis-server")
	r.setEnv("DEBIAN_FRONTEND", "noninteractive")
	if err := r.command(ctx, r.cfg.Root, nil, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"); err != nil {
		if err := r.command(ctx, r.cfg.Root, nil, "apt-get", "update", "-qq"); err != nil {
			return err
		}
		if err := r.command(ctx, r.cfg.Root, nil, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"); err != nil {
			return err
		}
	}
	// The package starts a system Redis; the quickstart needs only the binary.
	_ = r.command(ctx, r.cfg.Root, io.Discard, "service", "redis-server", "stop")
	return nil
}

func (r *run) cluster(ctx context.Context) error {
	if err := r.findCluster(ctx); err != nil {
		return err
	}
	img := or(r.cfg.AgentImage, r.st.AgentImage) // the latter: loaded into kind, k3d or minikube
	if img == "" && r.st.Local {
		img = (&cluster.Env{}).Image("unikube-agent")
	}
	if img != "" {
		r.st.AgentImage = img
		r.setEnv("UNIKUBE_AGENT_IMAGE", img)
		fmt.Fprintf(r.cfg.Out, "    agent image %s (QUICKSTART_AGENT_IMAGE to change)\n", img)
	}
	return nil
}

func (r *run) findCluster(ctx context.Context) error {
	local := cluster.DefaultConfig()
	if kc := r.cfg.Kubeconfig; kc != "" && !strings.Contains(kc, string(os.PathListSeparator)) {
		k, err := Connect(ctx, kc)
		if err == nil {
			r.kube = k
			r.st.Kubeconfig = kc
			r.st.Local = filepath.Clean(kc) == filepath.Clean(local.KubeconfigPath())
			fmt.Fprintf(r.cfg.Out, "    using the cluster of KUBECONFIG=%s\n", kc)
			if r.st.Local {
				// Import the images the chart needs (a no-op when they are there).
				return r.localUp(ctx, local)
			}
			if err := r.clusterImages(ctx); err != nil {
				return err
			}
			return r.save()
		}
		fmt.Fprintf(r.cfg.Out, "    KUBECONFIG=%s: %v; starting the local cluster instead\n", kc, err)
	}
	return r.localUp(ctx, local)
}

func (r *run) localUp(ctx context.Context, cfg cluster.Config) error {
	if err := cluster.CheckHost(); err != nil {
		return fmt.Errorf("no reachable cluster in KUBECONFIG, and the local one cannot run here: %w "+
			"(point KUBECONFIG at a kind, k3d or minikube cluster instead)", err)
	}
	fmt.Fprintln(r.cfg.Out, "    local single-node Kubernetes (test/cluster); the first start builds it, which takes a while")
	cfg.Log = slog.New(slog.NewTextHandler(r.cfg.Out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	info, err := cluster.Up(ctx, cfg)
	if err != nil {
		return err
	}
	prev, _ := r.load()
	r.st.ClusterStarted = !info.Reused || (prev != nil && prev.ClusterStarted)
	r.st.Local = true
	r.st.Kubeconfig = info.Kubeconfig
	if r.kube, err = Connect(ctx, info.Kubeconfig); err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Out, "    Kubernetes %s (%s), KUBECONFIG=%s\n", info.Version, map[bool]string{true: "already running", false: "started"}[info.Reused], info.Kubeconfig)
	// Up pushed the harness's images, the agent's of this checkout among
	// them, to the cluster's own registry, which its containerd pulls from.
	r.st.AgentImage = r.cfg.AgentImage
	if r.st.AgentImage == "" {
		reg, err := cluster.LocalRegistry(cfg)
		if err != nil {
			return err
		}
		r.st.AgentImage = reg.Ref(agentImageName + ":dev")
	}
	fmt.Fprintf(r.cfg.Out, "    agent Jobs run %s\n", r.st.AgentImage)
	return r.save()
}

func (r *run) statePath() string { return filepath.Join(r.cfg.Dir, "state.json") }

func (r *run) save() error {
	r.st.Namespace, r.st.Release = r.cfg.Namespace, r.cfg.Release
	b, _ := json.MarshalIndent(r.st, "", "  ")
	return os.WriteFile(r.statePath(), b, 0o644)
}

func (r *run) load() (*saved, error) {
	b, err := os.ReadFile(r.statePath())
	if err != nil {
		return nil, err
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", r.statePath(), err)
	}
	return &s, nil
}

// listenAddr is where the platform listens and how pods reach it: on the
// local harness the node address (pods reach the host there); elsewhere all
// addresses, reached through this host's outbound address.
func (r *run) listenAddr(ctx context.Context, p int) (listen, inCluster string, err error) {
	port := strconv.Itoa(p)
	if r.st.Local {
		ip, err := r.kube.NodeIP(ctx)
		if err != nil {
			return "", "", err
		}
		return net.JoinHostPort(ip, port), "http://" + net.JoinHostPort(ip, port), nil
	}
	if r.cfg.PlatformURLInCluster != "" {
		return net.JoinHostPort("0.0.0.0", port), r.cfg.PlatformURLInCluster, nil
	}
	// No packet is sent: connecting a UDP socket only picks the route.
	c, err := net.Dial("udp", "192.0.2.1:9")
	if err != nil {
		return "", "", fmt.Errorf("find this host's address for the cluster's pods (set QUICKSTART_PLATFORM_URL_IN_CLUSTER): %w", err)
	}
	defer c.Close()
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return net.JoinHostPort("0.0.0.0", port), "http://" + net.JoinHostPort(host, port), nil
}

// platformPort is the port of this checkout's platform on host: the
// configured one, else the one an earlier run recorded, else DefaultPort;
// a port held by a server that is not this checkout's is passed over
// (see choosePort). The choice is recorded in the state file.
func (r *run) platformPort(ctx context.Context, host string) error {
	want, fixed := r.cfg.Port, r.cfg.Port != 0
	if !fixed {
		want = DefaultPort
		if r.st.Port != 0 {
			want = r.st.Port
		}
	}
	p, err := choosePort(ctx, host, want, fixed, r.token, r.cfg.Out)
	if err != nil {
		return err
	}
	r.st.Port = p
	return nil
}

func (r *run) platform(ctx context.Context) error {
	tokenFile := filepath.Join(r.cfg.Dir, "admin-token")
	if b, err := os.ReadFile(tokenFile); err == nil {
		r.token = strings.TrimSpace(string(b))
		if err := ownerOnly(tokenFile); err != nil {
			return err
		}
	} else {
		buf := make([]byte, 24)
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		r.token = "uks_quickstart-" + hex.EncodeToString(buf)
		if err := writePrivate(tokenFile, []byte(r.token+"\n")); err != nil {
			return err
		}
	}
	probe, _, err := r.listenAddr(ctx, DefaultPort)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(probe)
	if err := r.platformPort(ctx, host); err != nil {
		return err
	}
	listen, inCluster, err := r.listenAddr(ctx, r.st.Port)
	if err != nil {
		return err
	}
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	endpoint := "http://" + net.JoinHostPort(host, strconv.Itoa(r.st.Port))
	if r.st.Local {
		endpoint = inCluster
	}
	r.st.Endpoint = endpoint
	r.setEnv("UNIKUBE_ENDPOINT", endpoint)
	r.setEnv("UNIKUBE_TOKEN", r.token)
	r.setEnv("KUBECONFIG", r.st.Kubeconfig)
	r.setEnv("QUICKSTART_PLATFORM_URL_IN_CLUSTER", inCluster)
	if err := r.writeEnvFile(inCluster); err != nil {
		return err
	}
	if err := r.save(); err != nil {
		return err
	}
	pidFile := filepath.Join(r.cfg.Dir, "platform.pid")
	// A server started from an older build keeps running old code after a
	// pull and rebuild: restart it when the binary changed.
	bin := filepath.Join(r.binDir(), "unikube-platform")
	binFile := filepath.Join(r.cfg.Dir, "platform.binary")
	sum, err := fileSum(bin)
	if err != nil {
		return err
	}
	if pid := readPid(pidFile); pid > 0 && alive(pid) {
		prev, _ := os.ReadFile(binFile)
		if string(prev) == sum && owned(ctx, endpoint, r.token) == nil {
			fmt.Fprintf(r.cfg.Out, "    already running (pid %d) at %s\n", pid, endpoint)
			return r.devToken(ctx)
		}
		if string(prev) != sum {
			fmt.Fprintf(r.cfg.Out, "    restarting it: unikube-platform was rebuilt\n")
		}
		stopPid(pid)
	}
	if err := os.WriteFile(binFile, []byte(sum), 0o644); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(r.cfg.Dir, "platform.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--listen", listen, "--data-dir", filepath.Join(r.cfg.Dir, "platform"))
	// The token goes in the environment, never on the command line.
	cmd.Env = append(os.Environ(), "UNIKUBE_ADMIN_TOKEN="+r.token)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives `make quickstart`
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start unikube-platform: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Ready and accepting this checkout's admin token: a server of
		// another checkout on the same address answers /readyz too.
		err := owned(ctx, endpoint, r.token)
		if err == nil && alive(pid) {
			break
		}
		if err == nil {
			err = errors.New("the server exited")
		}
		if time.Now().After(deadline) || !alive(pid) {
			log, _ := os.ReadFile(logFile.Name())
			return fmt.Errorf("platform at %s not ready: %w\n%s", endpoint, err, tail(string(log), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(r.cfg.Out, "    listening on %s (pid %d, log .quickstart/platform.log); pods reach it at %s\n", endpoint, pid, inCluster)
	return r.devToken(ctx)
}

// devToken makes the token the README's tour works with: user "dev" in
// group shop-devs, which Terraform makes maintainer of project shop. The
// admin token stays with Terraform.
func (r *run) devToken(ctx context.Context) error {
	path := filepath.Join(r.cfg.Dir, "dev-token")
	if _, err := os.Stat(path); err == nil {
		return ownerOnly(path)
	}
	admin, err := client.New(client.Config{Endpoint: r.st.Endpoint, Token: r.token, Getenv: func(string) string { return "" }})
	if err != nil {
		return err
	}
	// A token of that name left from an earlier run has an unknown secret.
	_ = admin.RevokeToken(ctx, "quickstart-dev")
	t, err := admin.CreateToken(ctx, client.TokenRequest{Name: "quickstart-dev", User: "dev", Groups: []string{"shop-devs"}})
	if err != nil {
		return fmt.Errorf("create the tour's token: %w", err)
	}
	return writePrivate(path, []byte(t.Secret+"\n"))
}

// writeEnvFile writes the variables the README's tour uses; the token is
// read from its own file so the env file can be shown.
func (r *run) writeEnvFile(inCluster string) error {
	s := fmt.Sprintf(`# source .quickstart/env: the quickstart's platform, cluster and helm plugin
export UNIKUBE_ENDPOINT=%q
export UNIKUBE_TOKEN="$(cat %q)"  # user dev, group shop-devs
export KUBECONFIG=%q
export HELM_DATA_HOME=%q
export HELM_PLUGINS=%q
export HELM_NAMESPACE=%q
export PATH=%q:"$PATH"
export QUICKSTART_PLATFORM_URL_IN_CLUSTER=%q
`, r.st.Endpoint, filepath.Join(r.cfg.Dir, "dev-token"), r.st.Kubeconfig, r.getEnv("HELM_DATA_HOME"), r.getEnv("HELM_PLUGINS"),
		r.cfg.Namespace, r.binDir()+string(os.PathListSeparator)+r.toolsBin(), inCluster)
	if r.st.AgentImage != "" {
		// The plugin's agent image (helm state apply in the tour).
		s += fmt.Sprintf("export UNIKUBE_AGENT_IMAGE=%q\n", r.st.AgentImage)
	}
	return writePrivate(filepath.Join(r.cfg.Dir, "env"), []byte(s))
}

// owned checks the platform at endpoint is ready and accepts token.
func owned(ctx context.Context, endpoint, token string) error {
	if err := ready(ctx, endpoint); err != nil {
		return err
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(u.Port())
	if st, why := probePort(ctx, u.Hostname(), port, token, os.Getuid()); st == portForeign {
		return errors.New(why)
	}
	return nil
}

func ready(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie (exited, not reaped) is not alive.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) == 0 || f[0] != "Z"
}

// stopPid stops one process: SIGTERM, then SIGKILL after 15 s.
func stopPid(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 150 {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pluginDir is the plugin's source: plugin.yaml sits at the repository root.
func (r *run) pluginDir() string { return r.cfg.Root }

func (r *run) hasPluginSource() bool {
	_, err := os.Stat(filepath.Join(r.pluginDir(), "plugin.yaml"))
	return err == nil
}

func (r *run) plugin(ctx context.Context) error {
	if !r.hasPluginSource() {
		fmt.Fprintln(r.cfg.Out, "    plugin.yaml is not in this checkout; skipping")
		return nil
	}
	if err := os.MkdirAll(r.getEnv("HELM_PLUGINS"), 0o755); err != nil {
		return err
	}
	return r.withoutGo(func() error {
		list, err := r.output(ctx, "helm", "plugin", "list")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(list, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "state" {
				// An earlier run's plugin (an archive, or a link to the
				// checkout from before): replaced by this build's archive.
				if err := r.command(ctx, r.cfg.Root, nil, "helm", "plugin", "uninstall", "state"); err != nil {
					return err
				}
			}
		}
		// As a user installs a release's plugin: by the archive's URL (the
		// release's dist served on loopback for this one install). Helm
		// takes this archive by URL or unpacked, not as a file
		// (manual/helm-plugin-install.md says why).
		archive := r.snap.HelmPluginArchive(runtime.GOOS, runtime.GOARCH)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.FileServer(http.Dir(r.snap.Dist)), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() { _ = srv.Close() }()
		args := []string{"plugin", "install", "http://" + ln.Addr().String() + "/" + filepath.Base(archive)}
		if v, err := r.output(ctx, "helm", "version", "--short"); err == nil && strings.HasPrefix(strings.TrimSpace(v), "v4") {
			args = append(args, "--verify=false") // the release ships no .prov
		}
		if err := r.command(ctx, r.cfg.Root, nil, "helm", args...); err != nil {
			return err
		}
		return r.command(ctx, r.cfg.Root, nil, "helm", "state", "version")
	})
}

func (r *run) chartDir() string { return filepath.Join(r.cfg.Root, "examples", "quickstart", "chart") }

func (r *run) helmInstall(ctx context.Context) error {
	args := []string{"upgrade", "--install", r.cfg.Release, r.chartDir(), "--namespace", r.cfg.Namespace,
		"--create-namespace", "--wait", "--timeout", "5m"}
	if r.st.Local {
		args = append(args, "-f", filepath.Join(r.chartDir(), "values-local.yaml"))
	}
	return r.command(ctx, r.cfg.Root, nil, "helm", args...)
}

func (r *run) tfDir() string { return filepath.Join(r.cfg.Root, "examples", "quickstart", "terraform") }

func (r *run) terraform(ctx context.Context) error {
	// Terraform runs on a copy of the example, so its lock file, .terraform/
	// and state stay in .quickstart/terraform.
	work := filepath.Join(r.cfg.Dir, "terraform")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	tfs, err := filepath.Glob(filepath.Join(r.tfDir(), "*.tf"))
	if err != nil || len(tfs) == 0 {
		return fmt.Errorf("no *.tf in %s", r.tfDir())
	}
	for _, f := range tfs {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	// Terraform installs the provider as users do: the release zip (the
	// release step's GoReleaser snapshot) from a filesystem mirror, no
	// dev_overrides. The snapshot's version is a pre-release, so an override
	// file requires it exactly.
	snap := r.snap
	mirror := filepath.Join(r.cfg.Dir, "terraform-mirror")
	zip, err := snap.Mirror(mirror, runtime.GOOS, runtime.GOARCH)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Out, "    provider %s: %s\n", snap.Version, relTo(r.cfg.Root, zip))
	if err := os.WriteFile(filepath.Join(work, "unikube_override.tf"), []byte(snapshot.RequiredProvider(snap.Version)), 0o644); err != nil {
		return err
	}
	// The lock file names the zip's hashes, which change with every build.
	_ = os.Remove(filepath.Join(work, ".terraform.lock.hcl"))
	rc := filepath.Join(r.cfg.Dir, "terraform.rc")
	if err := os.WriteFile(rc, []byte(snapshot.CLIConfig(mirror)), 0o644); err != nil {
		return err
	}
	r.setEnv("TF_CLI_CONFIG_FILE", rc)
	r.setEnv("TF_IN_AUTOMATION", "1")
	r.setEnv("TF_INPUT", "0")
	r.setEnv("TF_VAR_namespace", r.cfg.Namespace)
	r.setEnv("TF_VAR_release", r.cfg.Release)
	r.setEnv("TF_VAR_seed_dir", filepath.Join(r.cfg.Root, "examples", "quickstart", "seed"))
	r.setEnv("TF_VAR_platform_url_in_cluster", r.getEnv("QUICKSTART_PLATFORM_URL_IN_CLUSTER"))
	if r.st.Local {
		// The local cluster pulls the harness's images from its own registry.
		reg, err := cluster.LocalRegistry(cluster.DefaultConfig())
		if err != nil {
			return err
		}
		r.setEnv("TF_VAR_script_image", reg.Ref("postgres:15"))
	}
	r.setEnv("TF_VAR_agent_image", r.st.AgentImage)
	return r.withoutGo(func() error {
		if err := r.command(ctx, work, nil, "terraform", "init", "-input=false", "-no-color"); err != nil {
			return err
		}
		return r.command(ctx, work, nil, "terraform", "apply", "-auto-approve", "-input=false", "-no-color")
	})
}

// Tables of the seed, in the order the summary shows them.
var Tables = []string{"customers", "products", "orders", "order_items"}

func (r *run) show(ctx context.Context, res *Result) error {
	ns := r.cfg.Namespace
	sel := func(component string) string {
		return "app.kubernetes.io/instance=" + r.cfg.Release + ",app.kubernetes.io/component=" + component
	}
	if r.hasPluginSource() {
		out, err := r.output(ctx, "helm", "state", "history", r.cfg.Release, "--namespace", ns)
		if err != nil {
			return err
		}
		res.History = out
		fmt.Fprintf(r.cfg.Out, "\n$ helm state history %s --namespace %s\n%s", r.cfg.Release, ns, out)
	}
	var q strings.Builder
	q.WriteString("SELECT ")
	for i, t := range Tables {
		if i > 0 {
			q.WriteString(" || ' ' || ")
		}
		fmt.Fprintf(&q, "(SELECT count(*) FROM %s)", t)
	}
	out, err := r.kube.Exec(ctx, ns, sel("db"), "postgres", "psql", "-X", "-At", "-U", "postgres", "-d", "shop", "-c", q.String())
	if err != nil {
		return fmt.Errorf("row counts: %w", err)
	}
	counts := strings.Fields(out)
	if len(counts) != len(Tables) {
		return fmt.Errorf("row counts: unexpected psql output %q", out)
	}
	res.Rows = map[string]int{}
	fmt.Fprintf(r.cfg.Out, "\nPostgreSQL (%s-db, database shop): rows per table\n", r.cfg.Release)
	tw := tabwriter.NewWriter(r.cfg.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	for i, t := range Tables {
		n, _ := strconv.Atoi(counts[i])
		res.Rows[t] = n
		fmt.Fprintf(tw, "    %s\t%d\t\n", t, n)
	}
	tw.Flush()
	out, err = r.kube.Exec(ctx, ns, sel("web"), "web", "sh", "-c", "cd /uploads && find . -type f ! -name '.unikube-state*' | sed 's|^\\./||' | sort")
	if err != nil {
		return fmt.Errorf("uploaded files: %w", err)
	}
	res.Files = strings.Fields(out)
	fmt.Fprintf(r.cfg.Out, "\nUploads (%s-uploads, served by %s-web): %d files\n", r.cfg.Release, r.cfg.Release, len(res.Files))
	for i, f := range res.Files {
		if i == 6 {
			fmt.Fprintf(r.cfg.Out, "    ... and %d more\n", len(res.Files)-i)
			break
		}
		fmt.Fprintf(r.cfg.Out, "    %s\n", f)
	}
	if res.RedisKeys, err = RedisKeys(ctx, r.kube, ns, sel("cache")); err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Out, "\nRedis (%s-cache): %d keys\n", r.cfg.Release, res.RedisKeys)
	return nil
}

// RedisKeys counts the keys of db 0 without the apply's marker key.
func RedisKeys(ctx context.Context, k *Kube, ns, selector string) (int, error) {
	out, err := k.Exec(ctx, ns, selector, "redis", "sh", "-c", "redis-cli --no-auth-warning DBSIZE; redis-cli --no-auth-warning EXISTS unikube:state")
	if err != nil {
		return 0, fmt.Errorf("redis keys: %w", err)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return 0, fmt.Errorf("redis keys: unexpected redis-cli output %q", out)
	}
	n, err1 := strconv.Atoi(f[0])
	marker, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("redis keys: unexpected redis-cli output %q", out)
	}
	return n - marker, nil
}

func (r *run) summary(res *Result, total time.Duration) {
	w := r.cfg.Out
	fmt.Fprintf(w, "\nHow long each step took:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.steps {
		fmt.Fprintf(tw, "    %s\t%s\n", s.Took.Round(100*time.Millisecond), s.Name)
	}
	fmt.Fprintf(tw, "    %s\ttotal\n", total.Round(100*time.Millisecond))
	tw.Flush()
	fmt.Fprintf(w, "\nThe shop is seeded. Continue with the README's tour in this shell:\n\n    source %s\n    helm state list shop\n\nTear it all down with: make quickstart-down\n",
		relTo(r.cfg.Root, res.Env))
}

func relTo(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// Down undoes Up: the release and its namespace, the platform and its
// data, the plugin, Terraform's state; and the local cluster if Up started
// it (unless KeepCluster).
func Down(ctx context.Context, cfg Config) error {
	r := newRun(cfg)
	cfg = r.cfg
	st, err := r.load()
	if errors.Is(err, os.ErrNotExist) {
		st = &saved{Namespace: cfg.Namespace, Release: cfg.Release}
	} else if err != nil {
		return err
	}
	var errs []error
	if st.Kubeconfig != "" {
		_ = r.step("helm uninstall "+st.Release+" and delete namespace "+st.Namespace, func() error {
			k, err := Connect(ctx, st.Kubeconfig)
			if err != nil {
				fmt.Fprintf(cfg.Out, "    cluster gone (%v); nothing to delete there\n", err)
				return nil
			}
			r.setEnv("KUBECONFIG", st.Kubeconfig)
			_ = r.command(ctx, cfg.Root, io.Discard, "helm", "uninstall", st.Release, "--namespace", st.Namespace, "--wait", "--timeout", "2m")
			if err := k.DeleteNamespace(ctx, st.Namespace, 3*time.Minute); err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = r.step("stop the platform server", func() error {
		if pid := readPid(filepath.Join(cfg.Dir, "platform.pid")); pid > 0 && alive(pid) && isPlatform(pid) {
			stopPid(pid)
			fmt.Fprintf(cfg.Out, "    stopped pid %d\n", pid)
		}
		return nil
	})
	if st.ClusterStarted && !cfg.KeepCluster {
		_ = r.step("stop the local cluster (the quickstart started it)", func() error {
			lcfg := cluster.DefaultConfig()
			lcfg.Log = slog.New(slog.NewTextHandler(cfg.Out, &slog.HandlerOptions{Level: slog.LevelWarn}))
			lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			unlock, err := cluster.LockExclusive(lctx, lcfg)
			cancel()
			if err != nil {
				fmt.Fprintf(cfg.Out, "    tests still use the cluster; stopping it anyway (%v)\n", err)
			} else {
				defer unlock()
			}
			if err := cluster.Down(ctx, lcfg); err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = r.step("remove "+relTo(cfg.Root, cfg.Dir), func() error {
		if err := os.RemoveAll(cfg.Dir); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(errs...)
}

// isPlatform guards against a stale pid file naming a reused pid.
func isPlatform(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err != nil || strings.Contains(string(b), "unikube-platform")
}

// fileSum is the sha256 of a file, hex.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
