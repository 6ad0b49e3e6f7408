package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv/registryconfig"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster/images"
)

// The node runs two OCI registries (the CNCF distribution server, TLS with
// the cluster CA, htpasswd basic auth). containerd has the credentials of
// the first, so every image the harness pushes there is pulled like from
// any authenticated registry. It does not have those of the second: a pod
// pulls from it only with an imagePullSecret, which is what the pull-secret
// tests need.
const (
	registryComponent        = "registry"
	privateRegistryComponent = "registry-private"
	registryPort             = 5000
	privateRegistryPort      = 5001
)

// Registry is one of the local cluster's registries, as a client needs it.
type Registry struct {
	Host     string // 10.213.0.1:5000, the registry part of an image reference
	CAFile   string // PEM file of the CA its TLS certificate chains to
	User     string
	Password string
}

// LocalRegistry is the registry of the running local cluster that
// containerd pulls from with its own credentials; the harness pushes its
// images there.
func LocalRegistry(cfg Config) (*Registry, error) {
	return cfg.runningRegistry(registryComponent)
}

// PrivateRegistry is the running local cluster's second registry, whose
// credentials containerd does not have: pods pull from it only with an
// imagePullSecret.
func PrivateRegistry(cfg Config) (*Registry, error) {
	return cfg.runningRegistry(privateRegistryComponent)
}

func (c *Config) runningRegistry(which string) (*Registry, error) {
	if err := c.complete(); err != nil {
		return nil, err
	}
	if !c.componentAlive(which) {
		return nil, fmt.Errorf("the local cluster's %s is not running (pid file in %s): start the cluster with `make cluster-up`", which, c.state("pids"))
	}
	return c.registry(which)
}

// registry reads (or on first use creates) the registry's credentials; they
// stay in the state dir across down and up, like its data.
func (c *Config) registry(which string) (*Registry, error) {
	port := registryPort
	if which == privateRegistryComponent {
		port = privateRegistryPort
	}
	r := &Registry{Host: net.JoinHostPort(nodeIP.String(), strconv.Itoa(port)), CAFile: c.state("pki", "ca.crt")}
	dir := c.state(which)
	credFile := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(credFile)
	if err == nil {
		if err := json.Unmarshal(b, r); err != nil || r.User == "" || r.Password == "" {
			return nil, fmt.Errorf("%s: not the registry's credentials (%v); remove %s and run `make cluster-down cluster-up` to make new ones", credFile, err, dir)
		}
		r.Host, r.CAFile = net.JoinHostPort(nodeIP.String(), strconv.Itoa(port)), c.state("pki", "ca.crt")
		return r, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read registry credentials: %w", err)
	}
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("generate registry password: %w", err)
	}
	r.User, r.Password = "unikube", hex.EncodeToString(secret[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create registry dir: %w", err)
	}
	b, _ = json.Marshal(struct{ User, Password string }{r.User, r.Password})
	if err := writeFile(credFile, string(b), 0o600); err != nil {
		return nil, err
	}
	return r, nil
}

// startRegistry writes the registry's htpasswd and config and starts it on
// the node address (which must exist: after setupNetwork).
func (c *Config) startRegistry(ctx context.Context, which string) (*Registry, error) {
	r, err := c.registry(which)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(c.ToolsDir, "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the registry server (CNCF distribution) is missing: %w; `make tools` builds it", err)
	}
	dir := c.state(which)
	conf, err := registryconfig.Write(registryconfig.Config{Dir: dir, Addr: r.Host, Realm: "unikube-cluster", User: r.User, Password: r.Password,
		TLSCert: c.state("pki", "registry.crt"), TLSKey: c.state("pki", "registry.key")})
	if err != nil {
		return nil, err
	}
	if err := c.start(component{name: which, path: bin, args: []string{"serve", conf},
		// No OpenTelemetry exporter: nothing listens for it here.
		env: []string{"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"}}); err != nil {
		return nil, err
	}
	tr, err := r.Transport()
	if err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, which+" answering on "+r.Host, which, 30*time.Second, func(ctx context.Context) error {
		return r.ping(ctx, tr)
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// ping succeeds once the registry answers /v2/ over TLS with its basic-auth
// challenge, the answer every client starts with.
func (r *Registry) ping(ctx context.Context, tr http.RoundTripper) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+r.Host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		return fmt.Errorf("GET /v2/: %s, want 401 with a basic-auth challenge", resp.Status)
	}
	return nil
}

// Ref is the reference of repo ("postgres:15", "team/app:v1") in this registry.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Transport is an HTTP transport that trusts the registry's CA.
func (r *Registry) Transport() (*http.Transport, error) {
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("registry CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("registry CA %s: no PEM certificate in it", r.CAFile)
	}
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        10,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}, nil
}

// Auth is the registry's basic-auth credential for go-containerregistry.
func (r *Registry) Auth() authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{Username: r.User, Password: r.Password})
}

// RemoteOptions are what go-containerregistry's remote package needs to
// read from or write to the registry.
func (r *Registry) RemoteOptions(ctx context.Context) ([]remote.Option, error) {
	tr, err := r.Transport()
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(r.Auth()), remote.WithTransport(tr)}, nil
}

// DockerConfigJSON is the content of a kubernetes.io/dockerconfigjson
// Secret (key .dockerconfigjson) that lets a pod pull from the registry.
func (r *Registry) DockerConfigJSON() []byte {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	b, _ := json.Marshal(map[string]map[string]entry{"auths": {r.Host: {
		Username: r.User, Password: r.Password,
		Auth: base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password)),
	}}})
	return b
}

// Push writes img as repo ("postgres:15") unless the registry already has
// that digest under that tag, and returns the full reference.
func (r *Registry) Push(ctx context.Context, img v1.Image, repo string) (string, error) {
	ref, err := name.NewTag(r.Ref(repo), name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image reference %s: %w", r.Ref(repo), err)
	}
	opts, err := r.RemoteOptions(ctx)
	if err != nil {
		return "", err
	}
	want, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", repo, err)
	}
	if d, err := remote.Head(ref, opts...); err == nil && d.Digest == want {
		return ref.String(), nil
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return ref.String(), nil
}

// pushImages pushes the harness images' tars to the registry (each only
// when its digest is not there yet) and makes the node forget its copy of
// a tag that now names another image: pods pull IfNotPresent, so
// containerd would otherwise keep running what an earlier checkout pushed
// under the same tag (e.g. an agent of another version).
func (r *Registry) pushImages(ctx context.Context, c *Config, imgs []images.Image) error {
	pushed := make(map[string]string, len(imgs))
	for _, im := range imgs {
		img, err := tarball.ImageFromPath(im.Tar, nil)
		if err != nil {
			return fmt.Errorf("read image %s from %s: %w", im.Ref, im.Tar, err)
		}
		ref, err := r.Push(ctx, img, im.Repo)
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return fmt.Errorf("digest of %s: %w", im.Repo, err)
		}
		pushed[ref] = d.String()
	}
	return c.forgetOutdatedNodeImages(ctx, pushed)
}

// forgetOutdatedNodeImages removes the node's name for each ref of want
// whose image there is not the digest want gives, so the next pod pulls it.
func (c *Config) forgetOutdatedNodeImages(ctx context.Context, want map[string]string) error {
	out, err := c.ctr(ctx, "images", "ls")
	if err != nil {
		return fmt.Errorf("list the node's images: %w", err)
	}
	for _, row := range strings.Split(string(out), "\n") {
		f := strings.Fields(row)
		if len(f) < 3 {
			continue
		}
		if d, ok := want[f[0]]; ok && f[2] != d {
			if _, err := c.ctr(ctx, "images", "rm", f[0]); err != nil {
				return fmt.Errorf("forget the node's outdated image %s: %w", f[0], err)
			}
			c.Log.Info("the node's image is outdated; the next pod pulls it again", "image", f[0], "had", f[2], "now", d)
		}
	}
	return nil
}

// PushImages builds (if needed) the named harness images (all when none
// are named) and pushes them to the running local cluster's registry.
func PushImages(ctx context.Context, cfg Config, names ...string) ([]images.Image, *Registry, error) {
	if err := cfg.complete(); err != nil {
		return nil, nil, err
	}
	b := &images.Builder{ToolsDir: cfg.ToolsDir, RepoRoot: cfg.RepoRoot, Log: cfg.Log}
	imgs, err := b.Build(ctx, names...)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.componentAlive(registryComponent) {
		return imgs, nil, nil
	}
	r, err := LocalRegistry(cfg)
	if err != nil {
		return nil, nil, err
	}
	return imgs, r, r.pushImages(ctx, &cfg, imgs)
}

// registryHost is where the local cluster's registry listens.
func registryHost() string {
	return net.JoinHostPort(nodeIP.String(), strconv.Itoa(registryPort))
}

// RemoveNodeImage deletes every name the local cluster's containerd keeps
// for the image ref points to (its tag, digest and id records, as the CRI
// plugin makes them) and waits for the garbage collection of its content,
// so the next pod using ref pulls it again. For measurements (cold pulls);
// no pod may still use the image.
func RemoveNodeImage(ctx context.Context, cfg Config, ref string) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	out, err := cfg.ctr(ctx, "images", "ls")
	if err != nil {
		return fmt.Errorf("list the node's images: %w", err)
	}
	var target string
	rows := strings.Split(string(out), "\n")
	for _, row := range rows {
		if f := strings.Fields(row); len(f) >= 3 && f[0] == ref {
			target = f[2]
		}
	}
	if target == "" {
		return nil // not on the node
	}
	// The kubelet removes a deleted pod's containers a little later; their
	// snapshots would keep the image's content from being collected.
	if err := cfg.waitFor(ctx, "no container using "+ref, "containerd", time.Minute, func(ctx context.Context) error {
		out, err := cfg.ctr(ctx, "containers", "ls")
		if err != nil {
			return err
		}
		for _, row := range strings.Split(string(out), "\n") {
			if f := strings.Fields(row); len(f) >= 2 && f[1] == ref {
				return fmt.Errorf("container %s still uses it", f[0])
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var names []string
	for _, row := range rows {
		if f := strings.Fields(row); len(f) >= 3 && f[2] == target {
			names = append(names, f[0])
		}
	}
	if _, err := cfg.ctr(ctx, append([]string{"images", "rm", "--sync"}, names...)...); err != nil {
		return fmt.Errorf("remove %s from the node: %w", strings.Join(names, " "), err)
	}
	return nil
}
