package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv/registryconfig"
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
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		r.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf, err := registryconfig.Write(registryconfig.Config{Dir: root, Addr: r.Host, Realm: "unikube-testenv", User: r.User, Password: r.Password})
		if err != nil {
			return nil, err
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
