// Package api is the platform's HTTP API: REST/JSON under /api/v1, described
// by the OpenAPI document it serves, plus /healthz, /readyz and /metrics.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/secretbox"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxBodyBytes = 64 << 20
	DefaultJobTokenTTL  = time.Hour
	// MaxJobTokenTTL bounds job and upload tokens: an apply or capture
	// needs no more, and a leaked token must not stay useful for a day.
	MaxJobTokenTTL = 6 * time.Hour
	DefaultGCGrace = time.Hour
)

// Config wires the API to its stores.
type Config struct {
	Store  *store.Store
	Blobs  blob.Store
	Logger *slog.Logger
	// MaxBodyBytes bounds every request body (manifests, chunks, JSON).
	MaxBodyBytes int64
	// JobTokenTTL is the lifetime of a job token when the request names none.
	JobTokenTTL time.Duration
	// GCGrace protects chunks younger than this from garbage collection, so
	// uploads whose version is not committed yet keep their chunks.
	GCGrace time.Duration
	// ProjectUploadQuota bounds the compressed bytes of chunks a project
	// holds from uploads (store.ProjectUsage); 0 means no quota. An upload
	// past it answers 507 Insufficient Storage.
	ProjectUploadQuota int64
	// Now is the clock (tests shorten token lifetimes with it).
	Now func() time.Time
	// WriteTimeout, when set, is how long one write of a response may
	// stall: each write pushes the connection's write deadline this far
	// ahead, so a slow or stalled reader is cut off while a long chunk
	// batch that keeps flowing is not (the http.Server's own WriteTimeout
	// would bound the whole response).
	WriteTimeout time.Duration
	// Secrets seals the defaults of sensitive script variables at rest;
	// without a key such defaults are refused.
	Secrets *secretbox.Box
	// OIDC, when set, accepts the tokens of an OpenID Connect provider
	// beside platform tokens, and exchanges them for platform tokens
	// living OIDCExchangeTTL (default DefaultExchangeTTL).
	OIDC            *auth.OIDC
	OIDCExchangeTTL time.Duration
}

// Server serves the API.
type Server struct {
	cfg     Config
	st      *store.Store
	blobs   blob.Store
	log     *slog.Logger
	authn   *auth.Authenticator
	codec   *statepkg.Codec
	reg     *prometheus.Registry
	metrics *metrics
	mux     *http.ServeMux
	openapi []byte
}

// New builds the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Blobs == nil {
		return nil, errors.New("api: Store and Blobs are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.JobTokenTTL <= 0 {
		cfg.JobTokenTTL = DefaultJobTokenTTL
	}
	if cfg.JobTokenTTL > MaxJobTokenTTL {
		return nil, fmt.Errorf("api: the default job token lifetime %s is longer than the maximum %s: lower --job-token-ttl", cfg.JobTokenTTL, MaxJobTokenTTL)
	}
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = DefaultGCGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OIDCExchangeTTL <= 0 {
		cfg.OIDCExchangeTTL = DefaultExchangeTTL
	}
	if cfg.OIDCExchangeTTL > MaxExchangeTTL {
		return nil, fmt.Errorf("api: the OIDC token exchange lifetime %s is longer than the maximum %s: lower --oidc-exchange-ttl", cfg.OIDCExchangeTTL, MaxExchangeTTL)
	}
	if cfg.Secrets == nil {
		cfg.Secrets = &secretbox.Box{}
	}
	codec, err := statepkg.NewCodec(0)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		cfg:     cfg,
		st:      cfg.Store,
		blobs:   cfg.Blobs,
		log:     cfg.Logger,
		authn:   &auth.Authenticator{Store: cfg.Store, Now: cfg.Now, CacheTTL: time.Second, OIDC: cfg.OIDC},
		codec:   codec,
		reg:     reg,
		metrics: newMetrics(reg),
		mux:     http.NewServeMux(),
		openapi: OpenAPI(),
	}
	for _, rt := range s.routes() {
		var h http.Handler = rt.handler
		if rt.auth {
			h = s.authenticated(h)
		}
		s.mux.Handle(rt.method+" "+rt.pattern, h)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s: see /api/v1/openapi.json", r.Method, r.URL.Path))
	})
	return s, nil
}

// MetricsHandler serves the Prometheus metrics without a token, for a
// separate listener (--metrics-listen) only scrapers can reach.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// serveMetrics serves the metrics on the API listener, to the admin only:
// route names, counts and timings describe who uses the server how.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if err := needAdmin(r); err != nil {
		s.fail(w, r, err)
		return
	}
	s.MetricsHandler().ServeHTTP(w, r)
}

// Close releases the server's codec.
func (s *Server) Close() { s.codec.Close() }

// Handler returns the root handler with logging, metrics and panic recovery.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK, stall: s.cfg.WriteTimeout}
		if rec.stall > 0 {
			rec.rc = http.NewResponseController(w)
		}
		r = r.WithContext(context.WithValue(r.Context(), holderKey{}, &principalHolder{}))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					writeError(rec, http.StatusInternalServerError, "internal error: see the server log")
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			code := strconv.Itoa(rec.status)
			method := metricMethod(r.Method)
			s.metrics.requests.WithLabelValues(method, route, code).Inc()
			s.metrics.duration.WithLabelValues(method, route).Observe(d.Seconds())
			// The path never carries a token; the Authorization header is not logged.
			lvl := slog.LevelInfo
			if rec.status >= 500 {
				lvl = slog.LevelError
			}
			s.log.LogAttrs(r.Context(), lvl, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
				slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d),
				slog.String("principal", principalName(r.Context())), slog.String("remote", r.RemoteAddr))
		}()
		s.mux.ServeHTTP(rec, r)
	})
}

// metricMethod is the method label of a request: a client may send any
// method, even without a token, and a series per made-up method would let
// it grow the server's memory without bound.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	// stall > 0: each write moves the write deadline to now+stall (rc).
	stall    time.Duration
	rc       *http.ResponseController
	deadline time.Time
}

// extend moves the connection's write deadline ahead before a write, at
// most once per stall/4 to keep the syscalls rare.
func (r *statusRecorder) extend() {
	if r.rc == nil {
		return
	}
	now := time.Now()
	if r.deadline.Sub(now) > r.stall*3/4 {
		return
	}
	r.deadline = now.Add(r.stall)
	_ = r.rc.SetWriteDeadline(r.deadline) // not supported: the server's WriteTimeout applies
}

func (r *statusRecorder) WriteHeader(code int) {
	r.extend()
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.extend()
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the connection's ReadFrom reachable, so serving a chunk
// file uses sendfile instead of copying through user space.
func (r *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.extend()
	r.wrote = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (sendfile, flush).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	chunkIn    prometheus.Counter
	chunkOut   prometheus.Counter
	gcDeleted  prometheus.Counter
	commits    prometheus.Counter
	badChunks  prometheus.Counter
	authFailed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unikube_http_requests_total", Help: "HTTP requests by method, route and status code."},
			[]string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "unikube_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"method", "route"}),
		chunkIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_chunk_upload_bytes_total", Help: "Compressed chunk bytes stored."}),
		chunkOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_chunk_download_requests_total", Help: "Chunk downloads served."}),
		gcDeleted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_gc_deleted_chunks_total", Help: "Chunks deleted by garbage collection."}),
		commits:    prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_versions_committed_total", Help: "Versions committed."}),
		badChunks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_chunk_rejected_total", Help: "Chunk uploads rejected because bytes did not match the digest."}),
		authFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "unikube_auth_failures_total", Help: "Requests refused for a missing, unknown, revoked or expired token."}),
	}
	reg.MustRegister(m.requests, m.duration, m.chunkIn, m.chunkOut, m.gcDeleted, m.commits, m.badChunks, m.authFailed)
	return m
}

type ctxKey struct{}

func withPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, &p)
}

func principalFrom(ctx context.Context) auth.Principal {
	if p, ok := ctx.Value(ctxKey{}).(*auth.Principal); ok {
		return *p
	}
	return auth.Principal{}
}

// principalName is for logs; the principal pointer is filled in place so the
// outer logging middleware sees who the inner handler authenticated.
func principalName(ctx context.Context) string {
	if h, ok := ctx.Value(holderKey{}).(*principalHolder); ok && h.p != nil {
		return h.p.Name()
	}
	return "-"
}

type holderKey struct{}

type principalHolder struct{ p *auth.Principal }

// authenticated requires a valid bearer token.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authn.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if errors.Is(err, auth.ErrUnauthenticated) {
			s.metrics.authFailed.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="unikube"`)
			msg := "unauthorized: send a valid token as 'Authorization: Bearer TOKEN' (it may be unknown, revoked or expired)"
			if err != auth.ErrUnauthenticated { //nolint:errorlint // a wrapped error says more
				msg = "unauthorized: " + err.Error()
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if h, ok := r.Context().Value(holderKey{}).(*principalHolder); ok {
			h.p = &p
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apitypes.Error{Error: msg})
}

// httpError carries a status chosen by a handler.
type httpError struct {
	status  int
	msg     string
	missing []string
}

func (e *httpError) Error() string { return e.msg }

func errf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// fail maps an error to a status and writes it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, apitypes.Error{Error: he.msg, Missing: he.missing})
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than the server's limit of %d bytes (--max-body-bytes)", mbe.Limit))
	case errors.Is(err, store.ErrNotFound), errors.Is(err, statepkg.ErrNoSuchVersion), errors.Is(err, blob.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, statepkg.ErrInvalidRef), errors.Is(err, statepkg.ErrInvalidManifest), errors.Is(err, statepkg.ErrUnsupportedSchema),
		errors.Is(err, auth.ErrInvalidRole), errors.Is(err, auth.ErrInvalidSubject):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, auth.ErrOIDCUnavailable):
		s.log.Warn("OIDC provider unreachable", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, err.Error()+": try again later, or use a platform token")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "request cancelled: "+err.Error())
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		writeError(w, http.StatusInternalServerError, "internal error: see the server log")
	}
}

// decodeJSON reads a JSON body into v, bounded by MaxBodyBytes, refusing
// unknown fields so typos surface as 400s.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return errf(http.StatusBadRequest, "malformed JSON body: trailing data after the object")
	}
	return nil
}
