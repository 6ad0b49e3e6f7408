package registryconfig_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv/registryconfig"
)

// The cluster's node registries serve TLS with the cluster CA; the test
// environment's serve plain HTTP (testenv's own registry test covers that).
// This starts the real registry from a TLS config and checks that it asks
// for credentials and accepts the configured ones.
func TestWrite_TLSRegistryServesWithItsCertificateAndPassword(t *testing.T) {
	bin := filepath.Join(testenv.ToolsDir(), "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "the registry server (CNCF distribution; `make tools` builds it): %v", err)
	}
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	dir := t.TempDir()
	conf, err := registryconfig.Write(registryconfig.Config{Dir: dir, Addr: addr, Realm: "test", User: "u", Password: "p4ss", TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", conf)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(user, pass string) (int, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/v2/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, err := get("", "")
		if err == nil {
			if code != http.StatusUnauthorized {
				t.Fatalf("GET /v2/ without credentials: %d, want 401", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not answering over TLS on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, err := get("u", "p4ss"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v2/ with the configured password: %d, %v; want 200", code, err)
	}
	if code, err := get("u", "wrong"); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ with a wrong password: %d, %v; want 401", code, err)
	}
}

func TestWrite_RefusesHalfATLSPair(t *testing.T) {
	_, err := registryconfig.Write(registryconfig.Config{Dir: t.TempDir(), Addr: "127.0.0.1:1", User: "u", Password: "p", TLSCert: "c.pem"})
	if err == nil {
		t.Fatal("Write with a certificate and no key: no error")
	}
}
