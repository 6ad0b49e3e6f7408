package testenv

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OpenSearchVersion is the server scripts/install-opensearch.sh lays out
// under ToolsDir() (2.19 is the newest line that runs on Java 17).
const OpenSearchVersion = "2.19.6"

// OpenSearch is a running single-node OpenSearch on 127.0.0.1, plain HTTP
// without authentication (the Maven artifacts carry no security plugin; see
// SecureFront for TLS and a password).
type OpenSearch struct {
	URL  string // http://127.0.0.1:PORT
	Port int
	Dir  string // the node's home, config, data and log
	// Repo is the node's path.repo: a snapshot repository of type fs may
	// have its location under it.
	Repo string
}

// StartOpenSearch starts an OpenSearch node for the test and stops it at
// cleanup. A node takes 15-40 s to start on a loaded machine, so a package
// should share one (TestMain with RunOpenSearch, or a sync.Once).
func StartOpenSearch(t testing.TB) *OpenSearch {
	t.Helper()
	o, stop, err := RunOpenSearch(t.Context(), "")
	handle(t, "opensearch", stop, err)
	return o
}

// OpenSearchHome is where `make tools` puts the node's jars.
func OpenSearchHome() string {
	return filepath.Join(ToolsDir(), "opensearch-"+OpenSearchVersion)
}

// RunOpenSearch starts a node in a new directory under dir (os.TempDir()
// when empty). When running as root the node runs as `nobody` (OpenSearch
// refuses root). The returned stop function shuts it down and removes the
// directory.
func RunOpenSearch(ctx context.Context, dir string) (*OpenSearch, func() error, error) {
	java, err := findBinary("java")
	if err != nil {
		return nil, nil, err
	}
	dist := OpenSearchHome()
	if _, err := os.Stat(filepath.Join(dist, ".complete")); err != nil {
		return nil, nil, &NotInstalledError{Binary: "opensearch " + OpenSearchVersion + " (" + dist + ")", Looked: []string{dist}}
	}
	cred, err := serverCredential("nobody", "OpenSearch must run as an unprivileged user; `nobody` does not exist")
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "os")
	if err != nil {
		return nil, nil, err
	}
	cleanup := stopper(nil, root)
	fail := func(err error) (*OpenSearch, func() error, error) {
		_ = cleanup()
		return nil, nil, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return fail(err)
	}
	home := filepath.Join(root, "home")
	// Hard links (copies across file systems) because the tools cache may
	// sit under a home the unprivileged user cannot enter.
	for _, sub := range []string{"lib", "modules"} {
		if err := linkTree(filepath.Join(dist, sub), filepath.Join(home, sub)); err != nil {
			return fail(fmt.Errorf("lay out opensearch home: %w", err))
		}
	}
	// The node checks that bin/ and plugins/ exist and writes its keystore
	// into config/, data and logs elsewhere.
	for _, sub := range []string{"home/bin", "home/plugins", "config", "data", "logs", "tmp", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "config", "log4j2.properties"), []byte(openSearchLog4j), 0o644); err != nil {
		return fail(err)
	}
	o := &OpenSearch{Dir: root, Repo: filepath.Join(root, "snapshots")}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		transport, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := openSearchConfig(root, port, transport)
		if err := os.WriteFile(filepath.Join(root, "config", "opensearch.yml"), []byte(conf), 0o644); err != nil {
			return nil, err
		}
		for _, sub := range []string{"config", "data", "logs", "tmp", "snapshots"} {
			if err := chownTree(filepath.Join(root, sub), cred); err != nil {
				return nil, err
			}
		}
		p, err := startProcess(procSpec{
			name: "opensearch",
			path: java,
			args: []string{
				"-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xss1m",
				"-Djava.awt.headless=true", "-Dfile.encoding=UTF-8",
				"-Djava.io.tmpdir=" + filepath.Join(root, "tmp"),
				"-Dlog4j2.formatMsgNoLookups=true",
				"-Dopensearch.path.home=" + home,
				"-Dopensearch.path.conf=" + filepath.Join(root, "config"),
				"-cp", filepath.Join(home, "lib", "*"),
				"org.opensearch.bootstrap.OpenSearch",
			},
			dir:     root,
			logPath: filepath.Join(root, "opensearch.log"),
			cred:    cred,
			// Its graceful shutdown can take longer than stopTimeout
			// and the data is thrown away anyway.
			stopSig: syscall.SIGKILL,
			// A JVM loading the node's modules: 80 s seen at load 25.
			startTimeout: 4 * time.Minute,
		})
		if err != nil {
			return nil, err
		}
		o.Port = port
		o.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		if err := p.waitReady(ctx, o.ping); err != nil {
			_ = p.stop()
			if strings.Contains(err.Error(), "BindException") || strings.Contains(err.Error(), "BindTransportException") {
				return nil, errors.Join(errAddrInUse, err)
			}
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return fail(fmt.Errorf("start opensearch in %s: %w", root, err))
	}
	return o, stopper(proc, root), nil
}

func openSearchConfig(root string, httpPort, transportPort int) string {
	lines := []string{
		"cluster.name: unikube-test",
		"node.name: node-1",
		"discovery.type: single-node",
		"network.host: 127.0.0.1",
		"http.port: " + strconv.Itoa(httpPort),
		"transport.port: " + strconv.Itoa(transportPort),
		"path.data: " + filepath.Join(root, "data"),
		"path.logs: " + filepath.Join(root, "logs"),
		"path.repo: " + filepath.Join(root, "snapshots"),
		// A shared test machine's disk may be fuller than the watermarks,
		// which would make new indexes unassignable or read-only.
		"cluster.routing.allocation.disk.threshold_enabled: false",
		"bootstrap.memory_lock: false",
	}
	return strings.Join(lines, "\n") + "\n"
}

const openSearchLog4j = `status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
`

// ping succeeds once the node answers and its cluster state is usable.
func (o *OpenSearch) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/_cluster/health?wait_for_status=yellow&timeout=1s", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster health: %s: %s", resp.Status, body)
	}
	return nil
}

func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return chownForServer(p, cred)
	})
}

// linkTree recreates src under dst with hard links, copying where linking
// is not possible (another file system).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// OpenSearchFront is a TLS endpoint with HTTP basic authentication in front
// of a node: what users reach behind the security plugin or a proxy, for
// tests of wrong passwords and untrusted certificates.
type OpenSearchFront struct {
	URL      string // https://127.0.0.1:PORT
	User     string
	Password string
	CA       *CA // signed the front's certificate
}

// SecureFront starts a TLS, password-checking reverse proxy to o for the
// test, stopped at cleanup.
func (o *OpenSearch) SecureFront(t testing.TB) *OpenSearchFront {
	t.Helper()
	target, err := url.Parse(o.URL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f := &OpenSearchFront{User: "admin", Password: randomSecret(12), CA: NewCA(t)}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(f.User)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(f.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "Unauthorized")
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	}))
	certFile, keyFile := f.CA.Issue(t, "127.0.0.1", "localhost")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}
