// Package console is the platform's web console: server-rendered pages
// (html/template, embedded with go:embed) for browsing and managing
// projects, states, versions, access, tokens and cluster scripts.
//
// Every read and every change is a call of the platform API with the
// signed-in user's token, served in process by the API's own handler: the
// console has no access to the stores and no rules of its own, so it can do
// exactly what the API allows the user and nothing more. Which buttons a
// page shows is decided by api.Server.CallerRole, the same role check the
// API applies again when the button is used.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// RoleChecker tells the role the bearer of an Authorization header value
// holds on a project (state "") or state: api.Server.CallerRole.
type RoleChecker interface {
	CallerRole(ctx context.Context, authorization, project, state string) (auth.Role, error)
}

// Config wires the console to the API it calls.
type Config struct {
	// API is the platform API's root handler; the console calls it in
	// process, so each call is logged, measured and authorized like any
	// other API request.
	API http.Handler
	// Roles decides which actions a page offers.
	Roles  RoleChecker
	Logger *slog.Logger
	// SessionTTL is the lifetime of the token a sign-in mints for the
	// browser (default DefaultSessionTTL; never longer than the token
	// signed in with).
	SessionTTL time.Duration
}

// DefaultSessionTTL bounds a console session.
const DefaultSessionTTL = 12 * time.Hour

// Console serves the web console.
type Console struct {
	cfg   Config
	log   *slog.Logger
	base  *client.Client
	pages map[string]*template.Template
	mux   *http.ServeMux
	hl    *highlighter
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Roles == nil {
		return nil, errors.New("console: API and Roles are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	base, err := client.New(client.Config{
		Endpoint:   "http://platform.internal",
		HTTPClient: &http.Client{Transport: inProcess{cfg.API}},
		// An in-process call fails the same way when tried again at once:
		// one quick retry at most, so a failing page answers fast.
		RetryMax: 1, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond,
		UserAgent: "unikube-console/1",
		Getenv:    func(string) string { return "" },
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	hl, err := newHighlighter()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, base: base, pages: pages, mux: http.NewServeMux(), hl: hl}
	c.routes()
	return c, nil
}

// Handler serves the console. Changes (every POST) must come from the
// console's own pages: http.CrossOriginProtection refuses requests another
// origin's page sent (Sec-Fetch-Site, Origin), and each form carries a
// token derived from the session that another page cannot know.
func (c *Console) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusForbidden, "This request came from another web site, so it was refused and nothing was changed. Use the console's own buttons.")
	}))
	return c.logged(securityHeaders(cop.Handler(c.mux)))
}

// logged logs each console request like the API logs its own (the API
// calls a page makes are logged there too, with the caller). Tokens travel
// only in POST bodies and the cookie, never in the path.
func (c *Console) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		lvl := slog.LevelInfo
		if sw.status >= 500 {
			lvl = slog.LevelError
		}
		c.log.LogAttrs(r.Context(), lvl, "console request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders keeps the pages from loading anything the platform does
// not serve and from being framed by another site.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	c.mux.HandleFunc("GET /static/highlight.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(c.hl.css)
	})
	c.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	c.mux.HandleFunc("GET /signin", c.signinPage)
	c.mux.HandleFunc("POST /signin", c.signin)
	c.mux.HandleFunc("POST /signout", c.session(c.signout))

	c.mux.HandleFunc("GET /{$}", c.session(c.projectsPage))
	c.mux.HandleFunc("GET /projects/{project}", c.session(c.projectPage))
	c.mux.HandleFunc("POST /projects/{project}/grants", c.session(c.putGrant))
	c.mux.HandleFunc("GET /projects/{project}/states/{state}", c.session(c.statePage))
	c.mux.HandleFunc("POST /projects/{project}/states/{state}/grants", c.session(c.putGrant))
	c.mux.HandleFunc("POST /projects/{project}/states/{state}/prune", c.session(c.prune))
	c.mux.HandleFunc("GET /projects/{project}/states/{state}/versions/{ref}", c.session(c.versionPage))
	c.mux.HandleFunc("GET /projects/{project}/states/{state}/diff", c.session(c.diffPage))
	c.mux.HandleFunc("POST /projects/{project}/states/{state}/versions/{ref}/{action}", c.session(c.versionAction))

	c.mux.HandleFunc("GET /projects/{project}/new-script", c.session(c.scriptEditPage))
	c.mux.HandleFunc("POST /projects/{project}/scripts", c.session(c.saveScript))
	c.mux.HandleFunc("GET /projects/{project}/scripts/{script}", c.session(c.scriptPage))
	c.mux.HandleFunc("GET /projects/{project}/scripts/{script}/edit", c.session(c.scriptEditPage))
	c.mux.HandleFunc("GET /projects/{project}/scripts/{script}/runs/{run}", c.session(c.runPage))

	c.mux.HandleFunc("GET /tokens", c.session(c.tokensPage))
	c.mux.HandleFunc("POST /tokens", c.session(c.createToken))
	c.mux.HandleFunc("POST /tokens/{name}/revoke", c.session(c.revokeToken))

	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
}
