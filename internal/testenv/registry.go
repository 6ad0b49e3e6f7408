package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a running OCI registry (the CNCF distribution `registry`
// server, filesystem storage) on 127.0.0.1 that demands basic auth
// (htpasswd) for every request.
type Registry struct {
	Host     string // 127.0.0.1:PORT, the registry part of an image reference
	User     string
	Password string
	Dir      string // config, htpasswd, log; blobs under Dir/data
}

// StartRegistry starts an OCI registry for the test and stops it at cleanup.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	r, stop, err := RunRegistry(t.Context(), "")
	handle(t, "registry (distribution)", stop, err)
	return r
}

// RunRegistry starts the distribution registry in a new directory under dir
// (os.TempDir() when empty). The returned stop function shuts it down and
// removes the directory.
func RunRegistry(ctx context.Context, dir string) (*Registry, func() error, error) {
	// The pinned build from `make tools` wins over whatever PATH has.
	server, err := findBinary("registry", filepath.Join(ToolsDir(), "bin"))
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "registry")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Registry, func() error, error) {
		_ = stopper(nil, root)()
		return nil, nil, err
	}
	r := &Registry{User: "testenv", Password: randomSecret(16), Dir: root}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		return fail(fmt.Errorf("hash registry password: %w", err))
	}
	htpasswd := filepath.Join(root, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
		return fail(fmt.Errorf("write htpasswd: %w", err))
	}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		r.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(root, "config.yml")
		if err := os.WriteFile(conf, []byte(registryConfig(root, r.Host, htpasswd)), 0o600); err != nil {
			return nil, fmt.Errorf("write registry config: %w", err)
		}
		p, err := startProcess(procSpec{
			name: "registry",
			path: server,
			args: []string{"serve", conf},
			// No OpenTelemetry exporter: nothing listens for it here.
			env:     []string{"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"},
			dir:     root,
			logPath: filepath.Join(root, "registry.log"),
		})
		if err != nil {
			return nil, err
		}
		if err := p.waitReady(ctx, r.ping); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return fail(fmt.Errorf("start registry in %s: %w", root, err))
	}
	return r, stopper(proc, root), nil
}

func registryConfig(root, addr, htpasswd string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
auth:
  htpasswd:
    realm: unikube-testenv
    path: %s
`, filepath.Join(root, "data"), addr, randomSecret(16), htpasswd)
}

// ping succeeds once the registry answers /v2/ with its basic-auth
// challenge, the answer every client starts with.
func (r *Registry) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		return fmt.Errorf("GET /v2/: %s, want 401 with a basic-auth challenge", resp.Status)
	}
	return nil
}
