// Package client is the typed Go client of the Unikube State platform API,
// used by the Terraform provider, the Helm plugin and the in-cluster agent.
// It retries connection errors, 429 and 5xx with jittered backoff honouring
// Retry-After, never blindly retries non-idempotent requests, and implements
// statepkg.ChunkStore so the restore and capture cores stream through it.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Environment variables read when Config leaves a field empty.
const (
	EnvEndpoint = "UNIKUBE_ENDPOINT"
	EnvToken    = "UNIKUBE_TOKEN"
	// EnvCACertificate holds PEM certificates to trust besides the
	// system's; EnvCAFile names a file of them (read when the first is
	// empty).
	EnvCACertificate = "UNIKUBE_CA_CERTIFICATE"
	EnvCAFile        = "UNIKUBE_CA_FILE"
)

// DefaultResponseHeaderTimeout is generous: a garbage collection answers
// only when it is done; every other call answers in seconds.
const DefaultResponseHeaderTimeout = 10 * time.Minute

// Config configures a Client. Empty Endpoint and Token are taken from
// UNIKUBE_ENDPOINT and UNIKUBE_TOKEN (through Getenv, default os.Getenv).
type Config struct {
	Endpoint string // e.g. http://127.0.0.1:8080
	Token    string
	// Logger receives the retry library's leveled logs (debug: retries;
	// error: failed attempts). Nil discards them.
	Logger *slog.Logger
	// HTTPClient replaces the default pooled transport (e.g. custom TLS).
	HTTPClient *http.Client
	// CACertificate is PEM: certificates of a private CA that signed the
	// platform's certificate. They are trusted in addition to the
	// system's roots, not instead of them, so a bundle that adds one CA
	// cannot break a platform behind a public certificate. Empty: taken
	// from UNIKUBE_CA_CERTIFICATE, else the file UNIKUBE_CA_FILE names.
	// Not applied to a caller's HTTPClient.
	CACertificate []byte
	// RetryMax is the number of retries after the first attempt (default 4).
	RetryMax int
	// RetryWaitMin/Max bound the backoff between attempts (default 200ms/10s).
	RetryWaitMin, RetryWaitMax time.Duration
	// Parallelism of chunk uploads and downloads (default 8).
	Parallelism int
	// ResponseHeaderTimeout bounds the wait for a response's headers after
	// the request was sent, so a hung server fails the call instead of
	// blocking it forever (default DefaultResponseHeaderTimeout; bodies
	// may take longer). Not applied to a caller's HTTPClient.
	ResponseHeaderTimeout time.Duration
	UserAgent             string
	Getenv                func(string) string
}

// Client talks to one platform server with one token. It is safe for
// concurrent use.
type Client struct {
	base        *url.URL
	token       string
	ca          []byte
	http        *retryablehttp.Client
	ua          string
	parallelism int
	// noBatch is set once the server turned out to lack batch downloads;
	// shared by WithToken copies.
	noBatch *atomic.Bool
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = getenv(EnvEndpoint)
	}
	if cfg.Token == "" {
		cfg.Token = getenv(EnvToken)
	}
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("no platform endpoint: set it in the configuration or %s (e.g. http://127.0.0.1:8080)", EnvEndpoint)
	}
	u, err := url.Parse(strings.TrimRight(cfg.Endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("platform endpoint %q: want http(s)://host:port", cfg.Endpoint)
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 8
	}
	if len(cfg.CACertificate) == 0 {
		cfg.CACertificate = []byte(getenv(EnvCACertificate))
	}
	if f := getenv(EnvCAFile); len(cfg.CACertificate) == 0 && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CA certificate file of %s: %w", EnvCAFile, err)
		}
		cfg.CACertificate = b
	}
	var roots *x509.CertPool
	if len(cfg.CACertificate) > 0 {
		if roots, err = CertPool(cfg.CACertificate); err != nil {
			return nil, err
		}
	}
	rc := retryablehttp.NewClient()
	if cfg.HTTPClient != nil {
		rc.HTTPClient = cfg.HTTPClient
	} else {
		tr := cleanhttp.DefaultPooledTransport()
		tr.MaxIdleConnsPerHost = 4 * cfg.Parallelism
		if roots != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		tr.ResponseHeaderTimeout = cfg.ResponseHeaderTimeout
		if tr.ResponseHeaderTimeout <= 0 {
			tr.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
		}
		rc.HTTPClient = &http.Client{Transport: tr}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Always set: the library's default logger writes to stderr.
	rc.Logger = logger
	rc.RetryMax = 4
	if cfg.RetryMax > 0 {
		rc.RetryMax = cfg.RetryMax
	}
	rc.RetryWaitMin, rc.RetryWaitMax = 200*time.Millisecond, 10*time.Second
	if cfg.RetryWaitMin > 0 {
		rc.RetryWaitMin = cfg.RetryWaitMin
	}
	if cfg.RetryWaitMax > 0 {
		rc.RetryWaitMax = cfg.RetryWaitMax
	}
	rc.CheckRetry = checkRetry
	rc.Backoff = backoff
	// Hand the last response to us, so its status maps to a typed error.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	ua := cfg.UserAgent
	if ua == "" {
		ua = "unikube-state-client/1"
	}
	return &Client{base: u, token: cfg.Token, ca: cfg.CACertificate, http: rc, ua: ua, parallelism: cfg.Parallelism, noBatch: new(atomic.Bool)}, nil
}

// Endpoint returns the server's base URL.
func (c *Client) Endpoint() string { return c.base.String() }

// CACertificate returns the PEM certificates the client trusts besides
// the system's (nil when none): the executor hands the same bundle to the
// agents it starts.
func (c *Client) CACertificate() []byte { return c.ca }

// CertPool returns the system's roots plus the certificates in pem (a
// bundle may hold several). It fails when pem holds no certificate, so a
// wrong file (a key, a path instead of content) is reported, not ignored.
func CertPool(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system roots here: the bundle alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("CA certificate: no PEM certificate found (want the CA's certificate, -----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// WithToken returns a client sharing the connection pool that uses another
// token (e.g. a job token).
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

type idemKey struct{}

// checkRetry: stop at once when the context is done; retry 429 always (the
// server did not process it); connection errors and 5xx only for idempotent
// requests, except errors on dialing, where nothing was sent.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	idempotent, _ := ctx.Value(idemKey{}).(bool)
	if err != nil {
		var op *net.OpError
		dialFailed := errors.As(err, &op) && op.Op == "dial"
		if !idempotent && !dialFailed {
			return false, err
		}
		return retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return true, nil // the server says it did not process the request
	case resp.StatusCode == http.StatusInsufficientStorage:
		return false, nil // a project's upload quota: asking again will not help
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return idempotent, nil
	}
	return false, nil
}

// backoff honours Retry-After (seconds or HTTP date) on any status, and
// otherwise waits min*2^attempt with full jitter, capped at max.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
				return min64(time.Duration(s)*time.Second, hi)
			}
			if t, err := http.ParseTime(ra); err == nil {
				return min64(max64(time.Until(t), 0), hi)
			}
		}
	}
	d := lo << min64(time.Duration(attempt), 20)
	if d <= 0 || d > hi {
		d = hi
	}
	return lo/2 + time.Duration(rand.Int64N(int64(d)))
}

func min64(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// pathf builds an escaped API path: each arg is one path segment.
func pathf(format string, segs ...string) string {
	esc := make([]any, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, esc...)
}

// request is one API call.
type request struct {
	method     string
	path       string // already escaped
	query      url.Values
	body       any // JSON-encoded unless []byte
	header     http.Header
	idempotent bool
}

// do sends the request and returns the response for a 2xx status; any other
// status becomes an *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("build request path: %w", err)
	}
	u.Path = p
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	var body any
	ctype := ""
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body, ctype = b, "application/zstd"
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body, ctype = enc, "application/json"
	}
	idem := r.idempotent || r.method == http.MethodGet || r.method == http.MethodHead || r.method == http.MethodPut || r.method == http.MethodDelete
	req, err := retryablehttp.NewRequestWithContext(context.WithValue(ctx, idemKey{}, idem), r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if te := untrusted(c.base, err); te != nil {
			return nil, te
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, u.Path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, newError(r.method, u.Path, resp)
}

// doJSON sends the request and decodes a JSON response into out (if not nil).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	return nil
}

// Errors a caller can test with errors.Is; the concrete *Error carries the
// status, the server's message and, for commits, the missing chunks.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrTooLarge     = errors.New("request too large")
	ErrServer       = errors.New("server error")
)

// ErrUntrustedCertificate: the platform's TLS certificate did not verify
// (unknown authority, wrong host name, expired); the concrete error is a
// *TLSError.
var ErrUntrustedCertificate = errors.New("platform certificate not trusted")

// TLSError is a platform whose certificate did not verify. Nothing was
// sent: the handshake failed before the request.
type TLSError struct {
	URL string
	Err error // the x509 reason
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("the TLS certificate of the platform at %s is not trusted: %v; if a private CA signed it, "+
		"give that CA's certificate (Terraform: the provider's ca_certificate; helm state: --ca-file or %s; "+
		"agent Jobs get the same bundle, or the ConfigMap ca_configmap/--ca-configmap names)", e.URL, e.Err, EnvCAFile)
}

func (e *TLSError) Unwrap() []error { return []error{ErrUntrustedCertificate, e.Err} }

// untrusted returns a *TLSError when err is a failed certificate check.
func untrusted(base *url.URL, err error) *TLSError {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var reason error
	switch {
	case errors.As(err, &cv):
		reason = cv.Err
	case errors.As(err, &ua):
		reason = ua
	case errors.As(err, &he):
		reason = he
	case errors.As(err, &ci):
		reason = ci
	default:
		return nil
	}
	return &TLSError{URL: base.String(), Err: reason}
}

// Error is a non-2xx answer of the server.
type Error struct {
	Status  int
	Method  string
	Path    string
	Message string
	// Missing lists the chunks a commit needs uploaded first (409).
	Missing []string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// Unwrap maps the status to a sentinel.
func (e *Error) Unwrap() error {
	switch {
	case e.Status == http.StatusBadRequest:
		return ErrBadRequest
	case e.Status == http.StatusUnauthorized:
		return ErrUnauthorized
	case e.Status == http.StatusForbidden:
		return ErrForbidden
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusConflict:
		return ErrConflict
	case e.Status == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case e.Status >= 500:
		return ErrServer
	}
	return nil
}

func newError(method, path string, resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, Method: method, Path: path}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body apitypes.Error
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Missing = body.Error, body.Missing
	} else if h := resp.Header.Get("X-Unikube-Error"); h != "" {
		e.Message = h
	} else {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(b, nil)))
	}
	return e
}
