package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// tlsServer serves a project over HTTPS with a certificate of ca for
// 127.0.0.1, counting the requests that got through the handshake.
func tlsServer(t *testing.T, ca *testenv.CA) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	certFile, keyFile := ca.Issue(t, "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"name":"shop"}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &calls
}

func newTLSClient(t *testing.T, url string, ca []byte, env map[string]string) *Client {
	t.Helper()
	c, err := New(Config{Endpoint: url, Token: "t", CACertificate: ca, RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond,
		Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient_TrustsAPrivateCAInAdditionToTheSystem(t *testing.T) {
	ca := testenv.NewCA(t)
	srv, _ := tlsServer(t, ca)
	c := newTLSClient(t, srv.URL, ca.CertPEM, nil)
	if p, err := c.GetProject(context.Background(), "shop"); err != nil || p.Name != "shop" {
		t.Fatalf("got %+v, %v", p, err)
	}
	if string(c.CACertificate()) != string(ca.CertPEM) {
		t.Fatal("the client does not hand on the bundle it trusts")
	}
}

func TestClient_CAFromTheEnvironment(t *testing.T) {
	ca := testenv.NewCA(t)
	srv, _ := tlsServer(t, ca)
	for name, env := range map[string]map[string]string{
		"file":    {EnvCAFile: ca.CertFile},
		"content": {EnvCACertificate: string(ca.CertPEM)},
	} {
		t.Run(name, func(t *testing.T) {
			c := newTLSClient(t, srv.URL, nil, env)
			if _, err := c.GetProject(context.Background(), "shop"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A platform whose certificate the client cannot verify fails the first
// call at once (no retries: another attempt cannot help), sends nothing,
// and the message names the URL, the x509 reason and what to set.
func TestClient_UntrustedCertificateFailsClearly(t *testing.T) {
	ca := testenv.NewCA(t)
	srv, calls := tlsServer(t, ca)
	other := testenv.NewCA(t)
	for name, bundle := range map[string][]byte{"no CA": nil, "another CA": other.CertPEM} {
		t.Run(name, func(t *testing.T) {
			c := newTLSClient(t, srv.URL, bundle, nil)
			start := time.Now()
			_, err := c.GetProject(context.Background(), "shop")
			var te *TLSError
			if !errors.Is(err, ErrUntrustedCertificate) || !errors.As(err, &te) {
				t.Fatalf("got %v, want a *TLSError", err)
			}
			for _, want := range []string{srv.URL, "x509: certificate signed by unknown authority", "ca_certificate", "--ca-file", EnvCAFile} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: a certificate error must not be retried", d)
			}
			if calls.Load() != 0 {
				t.Errorf("%d requests reached the server past a failed handshake", calls.Load())
			}
		})
	}
}

func TestClient_WrongHostNameIsAnUntrustedCertificate(t *testing.T) {
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "platform.example.com")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	_, err = newTLSClient(t, srv.URL, ca.CertPEM, nil).GetProject(context.Background(), "shop")
	if !errors.Is(err, ErrUntrustedCertificate) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("got %v", err)
	}
}

func TestClient_RefusesACABundleWithoutCertificates(t *testing.T) {
	keyOnly := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
	for name, cfg := range map[string]Config{
		"content":      {CACertificate: keyOnly},
		"path as PEM":  {CACertificate: []byte("/etc/ssl/private-ca.crt")},
		"missing file": {Getenv: func(k string) string { return map[string]string{EnvCAFile: filepath.Join(t.TempDir(), "nope.crt")}[k] }},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Endpoint = "https://127.0.0.1:9"
			if cfg.Getenv == nil {
				cfg.Getenv = func(string) string { return "" }
			}
			_, err := New(cfg)
			if err == nil || (!strings.Contains(err.Error(), "no PEM certificate") && !errors.Is(err, os.ErrNotExist)) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
