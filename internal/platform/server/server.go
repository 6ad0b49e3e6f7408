// Package server assembles the platform: it opens the metadata and blob
// stores, bootstraps the admin token, and serves the API with graceful
// shutdown. cmd/unikube-platform and platformtest both use it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/api"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/console"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/secretbox"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// Options configure a platform server. Zero values give the embedded default.
type Options struct {
	DataDir      string // default ./unikube-data
	Database     string // "" = SQLite in DataDir; postgres://...
	BlobStore    string // "" = DataDir/chunks; s3://bucket?endpoint=...
	TLSCert      string
	TLSKey       string
	AdminToken   string // bootstrap/rotate the admin token; "" = generate on first start
	MaxBodyBytes int64
	JobTokenTTL  time.Duration
	GCGrace      time.Duration
	// ProjectUploadQuota bounds each project's uploaded chunk bytes
	// (api.Config.ProjectUploadQuota); 0 means none.
	ProjectUploadQuota int64
	// Offline is set by tools that open the stores next to a running
	// server (`unikube-platform gc`): they must not clean up the server's
	// in-flight writes.
	Offline bool
	// Timeouts of the HTTP server; zero values take the defaults below.
	Timeouts Timeouts
	// MetricsListen, when set, serves /metrics without a token on this
	// address (for a scraper; keep it off the public network). On the API
	// address /metrics needs the admin token either way.
	MetricsListen string
	// SecretKey seals sensitive script variable defaults at rest (32 bytes,
	// base64 or hex); "" = UNIKUBE_SECRET_KEY from Getenv.
	SecretKey string
	// OIDC trusts an OpenID Connect provider's tokens beside platform
	// tokens when OIDC.Issuer is set (auth.OIDCConfig); OIDCExchangeTTL is
	// the lifetime of platform tokens exchanged for them.
	OIDC            auth.OIDCConfig
	OIDCExchangeTTL time.Duration
	Logger          *slog.Logger
	Getenv          func(string) string
	Now             func() time.Time
}

// Timeouts bound how long a client may hold a connection.
type Timeouts struct {
	// ReadHeader: sending the request line and headers.
	ReadHeader time.Duration
	// Read: the whole request including its body (a chunk of up to
	// 64 MiB must arrive within it).
	Read time.Duration
	// Write: how long one write of a response may stall. Every write
	// pushes the deadline ahead, so a long chunk batch that keeps flowing
	// is not cut off; a reader that stops reading is.
	Write time.Duration
	// Idle: a kept-alive connection waiting for its next request.
	Idle time.Duration
}

// Default timeouts.
const (
	DefaultReadHeaderTimeout = 30 * time.Second
	DefaultReadTimeout       = 10 * time.Minute
	DefaultWriteTimeout      = 10 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ReadHeader, DefaultReadHeaderTimeout)
	def(&t.Read, DefaultReadTimeout)
	def(&t.Write, DefaultWriteTimeout)
	def(&t.Idle, DefaultIdleTimeout)
	return t
}

// Server is an assembled platform server.
type Server struct {
	Store *store.Store
	Blobs blob.Store
	API   *api.Server
	// Console is the web console, served at / beside the API.
	Console *console.Console
	// GeneratedAdminToken is set when this start created the admin token; it
	// is the only time the secret exists outside its holder.
	GeneratedAdminToken string
	opts                Options
	log                 *slog.Logger
}

// New opens the stores and builds the API.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		opts.DataDir = "unikube-data"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Timeouts = opts.Timeouts.withDefaults()
	if opts.SecretKey == "" {
		opts.SecretKey = opts.Getenv(secretbox.KeyEnv)
	}
	secrets, err := secretbox.ParseKey(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("%s / --secret-key-file: %w", secretbox.KeyEnv, err)
	}
	var oidc *auth.OIDC
	if opts.OIDC.Issuer != "" || opts.OIDC.ClientID != "" {
		if oidc, err = auth.NewOIDC(opts.OIDC, opts.Now); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", opts.DataDir, err)
	}
	st, err := store.Open(ctx, opts.Database, opts.DataDir)
	if err != nil {
		return nil, err
	}
	blobs, err := blob.Open(ctx, opts.BlobStore, opts.DataDir, opts.Getenv)
	if err != nil {
		st.Close()
		return nil, err
	}
	if fs, ok := blobs.(*blob.FS); ok && !opts.Offline {
		// Leftovers of writes a crash interrupted; the filesystem store is
		// single-server, so nothing else is writing them now (unless this
		// is a tool running next to the server: Offline).
		_ = fs.CleanTemp()
	}
	s := &Server{Store: st, Blobs: blobs, opts: opts, log: opts.Logger}
	if err := s.bootstrapAdmin(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := s.sealLegacyDefaults(ctx, secrets); err != nil {
		st.Close()
		return nil, err
	}
	s.API, err = api.New(api.Config{Store: st, Blobs: blobs, Logger: opts.Logger, MaxBodyBytes: opts.MaxBodyBytes,
		JobTokenTTL: opts.JobTokenTTL, GCGrace: opts.GCGrace, ProjectUploadQuota: opts.ProjectUploadQuota, Now: opts.Now, WriteTimeout: opts.Timeouts.Write, Secrets: secrets,
		OIDC: oidc, OIDCExchangeTTL: opts.OIDCExchangeTTL})
	if err != nil {
		st.Close()
		return nil, err
	}
	if s.Console, err = console.New(console.Config{API: s.API.Handler(), Roles: s.API, Logger: opts.Logger}); err != nil {
		s.API.Close()
		st.Close()
		return nil, err
	}
	return s, nil
}

// sealLegacyDefaults seals sensitive script defaults an older platform
// stored in plain text; without a key it warns that they are there.
func (s *Server) sealLegacyDefaults(ctx context.Context, secrets *secretbox.Box) error {
	var seal func(project, script, variable, plain string) (string, error)
	if secrets.HasKey() {
		seal = func(project, script, variable, plain string) (string, error) {
			return secrets.Seal(plain, api.SealContext(project, script, variable))
		}
	}
	n, err := s.Store.SealPlainSensitiveDefaults(ctx, seal)
	if err != nil {
		return fmt.Errorf("seal stored sensitive script defaults: %w", err)
	}
	switch {
	case n > 0 && seal != nil:
		s.log.Info("sealed sensitive script defaults stored in plain text", "count", n)
	case n > 0:
		s.log.Warn("sensitive script defaults are stored in plain text: set "+secretbox.KeyEnv+" or --secret-key-file to seal them", "count", n)
	}
	return nil
}

// bootstrapAdmin makes the --admin-token the admin token, or creates one on
// first start.
func (s *Server) bootstrapAdmin(ctx context.Context) error {
	now := s.opts.Now().UTC()
	t := store.Token{Token: apitypes.Token{ID: auth.NewID(), Name: "admin", Kind: store.TokenAdmin, CreatedAt: now, CreatedBy: "bootstrap"}}
	if s.opts.AdminToken != "" {
		if len(s.opts.AdminToken) < 16 {
			return errors.New("the admin token must be at least 16 characters: generate one with `openssl rand -hex 32`")
		}
		t.Hash = auth.HashSecret(s.opts.AdminToken)
		if old, err := s.Store.TokenByHash(ctx, t.Hash); err == nil && old.Kind == store.TokenAdmin && old.RevokedAt == nil {
			return nil
		}
		if err := s.Store.ReplaceAdminToken(ctx, t); err != nil {
			return err
		}
		s.log.Info("admin token set from --admin-token/UNIKUBE_ADMIN_TOKEN")
		return nil
	}
	n, err := s.Store.CountAdminTokens(ctx)
	if err != nil || n > 0 {
		return err
	}
	secret, hash, err := auth.NewSecret()
	if err != nil {
		return err
	}
	t.Hash = hash
	if err := s.Store.CreateToken(ctx, t); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil // another replica bootstrapped first
		}
		return err
	}
	s.GeneratedAdminToken = secret
	return nil
}

// Handler is the server's root HTTP handler: the API under /api/ and at
// /healthz, /readyz and /metrics; the web console everywhere else.
func (s *Server) Handler() http.Handler {
	apiH, consoleH := s.API.Handler(), s.Console.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/api/"), p == "/api", p == "/healthz", p == "/readyz", p == "/metrics":
			apiH.ServeHTTP(w, r)
		default:
			consoleH.ServeHTTP(w, r)
		}
	})
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// in-flight requests get up to 30 s to finish. With MetricsListen set it
// also serves the metrics there.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	t := s.opts.Timeouts
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		// The deadline each response write pushes ahead (api.Config.WriteTimeout)
		// starts here, for handlers that write nothing.
		WriteTimeout: t.Write,
		IdleTimeout:  t.Idle,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.opts.MetricsListen != "" {
		stop, err := s.serveMetrics(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	if s.opts.TLSCert != "" || s.opts.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCert, s.opts.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveMetrics serves /metrics without a token on MetricsListen; stop
// shuts it down.
func (s *Server) serveMetrics(ctx context.Context) (stop func(), err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for metrics: %w (use --metrics-listen to choose another address)", s.opts.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.API.MetricsHandler())
	t := s.opts.Timeouts
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: t.Idle,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() { _ = ms.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ms.Shutdown(sctx)
	}, nil
}

// Close releases the stores.
func (s *Server) Close() error {
	if s.API != nil {
		s.API.Close()
	}
	return s.Store.Close()
}
