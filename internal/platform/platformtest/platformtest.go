// Package platformtest runs the real platform server for tests: the same
// assembly as cmd/unikube-platform, on a real loopback listener, with a temp
// SQLite database and filesystem chunk store, or PostgreSQL + S3 from testenv.
package platformtest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// AdminToken is the admin token every test server bootstraps with.
const AdminToken = "uks_platformtest-admin-token-0123456789"

// Options tune the server; the zero value is the embedded default.
type Options struct {
	// AdminToken: empty for the package's AdminToken.
	AdminToken   string
	Database     string
	BlobStore    string
	Env          map[string]string // what the server sees as its environment
	Now          func() time.Time
	MaxBodyBytes int64
	JobTokenTTL  time.Duration
	GCGrace      time.Duration
	// ProjectUploadQuota: see server.Options.
	ProjectUploadQuota int64
	Logger             *slog.Logger
	DataDir            string // default t.TempDir()
	// Timeouts of the HTTP server (zero: the defaults).
	Timeouts server.Timeouts
	// MetricsListen also serves /metrics without a token there.
	MetricsListen string
	// TLSCert/TLSKey serve HTTPS (see WithPrivateCA); CACertificate is
	// what Client trusts then.
	TLSCert, TLSKey string
	CACertificate   []byte
	// OIDC trusts an OpenID Connect provider (see server.Options).
	OIDC            auth.OIDCConfig
	OIDCExchangeTTL time.Duration
}

// Option changes Options.
type Option func(testing.TB, *Options)

// WithOptions sets fields directly.
func WithOptions(f func(*Options)) Option { return func(_ testing.TB, o *Options) { f(o) } }

// WithPostgresS3 stores metadata in a fresh PostgreSQL database and chunks
// in a fresh S3 bucket (versitygw), both started by testenv: the scale-out
// configuration.
func WithPostgresS3() Option {
	return func(t testing.TB, o *Options) {
		pg := testenv.StartPostgres(t)
		pg.CreateDatabase(t, "platform")
		s3 := testenv.StartS3(t)
		s3.CreateBucket(t, "chunks")
		o.Database = pg.URL("platform")
		o.BlobStore = "s3://chunks?endpoint=" + s3.Endpoint + "&region=" + s3.Region
		if o.Env == nil {
			o.Env = map[string]string{}
		}
		o.Env["AWS_ACCESS_KEY_ID"] = s3.AccessKey
		o.Env["AWS_SECRET_ACCESS_KEY"] = s3.SecretKey
	}
}

// WithPrivateCA serves HTTPS with a certificate for 127.0.0.1 signed by
// ca, a CA no system trusts: clients must be given ca.CertPEM.
func WithPrivateCA(ca *testenv.CA) Option {
	return func(t testing.TB, o *Options) {
		o.TLSCert, o.TLSKey = ca.Issue(t, "127.0.0.1")
		o.CACertificate = ca.CertPEM
	}
}

// WithAdminToken bootstraps with token instead of AdminToken, e.g. one
// like the chart's (40 random letters and digits, no "uks_" prefix).
func WithAdminToken(token string) Option {
	return func(_ testing.TB, o *Options) { o.AdminToken = token }
}

// Server is a running test platform.
type Server struct {
	URL        string
	AdminToken string
	DataDir    string
	Platform   *server.Server
	Options    Options
}

// Start runs the platform until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(t, &o)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.AdminToken == "" {
		o.AdminToken = AdminToken
	}
	env := o.Env
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{
		DataDir: o.DataDir, Database: o.Database, BlobStore: o.BlobStore, AdminToken: o.AdminToken,
		MaxBodyBytes: o.MaxBodyBytes, JobTokenTTL: o.JobTokenTTL, GCGrace: o.GCGrace, ProjectUploadQuota: o.ProjectUploadQuota, Logger: o.Logger, Now: o.Now,
		Timeouts: o.Timeouts, MetricsListen: o.MetricsListen, TLSCert: o.TLSCert, TLSKey: o.TLSKey,
		OIDC: o.OIDC, OIDCExchangeTTL: o.OIDCExchangeTTL,
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		cancel()
		t.Fatalf("platformtest: start server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		srv.Close()
		t.Fatalf("platformtest: listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("platformtest: serve: %v", err)
			}
		case <-time.After(35 * time.Second):
			t.Errorf("platformtest: server did not shut down")
		}
		srv.Close()
	})
	scheme := "http://"
	if o.TLSCert != "" {
		scheme = "https://"
	}
	return &Server{URL: scheme + ln.Addr().String(), AdminToken: o.AdminToken, DataDir: o.DataDir, Platform: srv, Options: o}
}

// Client returns a client of the server using token (fast retries, so
// tests of failures stay quick).
func (s *Server) Client(t testing.TB, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoint: s.URL, Token: token, CACertificate: s.Options.CACertificate, RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: 200 * time.Millisecond,
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("platformtest: client: %v", err)
	}
	return c
}

// Admin returns a client with the admin token.
func (s *Server) Admin(t testing.TB) *client.Client { return s.Client(t, s.AdminToken) }

// UserToken creates a token for user (in groups) with the admin token and
// returns its secret.
func (s *Server) UserToken(t testing.TB, name, user string, groups ...string) string {
	t.Helper()
	tok, err := s.Admin(t).CreateToken(context.Background(), client.TokenRequest{Name: name, User: user, Groups: groups})
	if err != nil {
		t.Fatalf("platformtest: create token for %s: %v", user, err)
	}
	return tok.Secret
}
