package opensearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// client speaks the REST calls OpenSearch and Elasticsearch 7/8 share. It is
// plain net/http: the driver streams NDJSON bodies both ways, which a typed
// client would only wrap.
type client struct {
	base     *url.URL // scheme://host:port, no user, no path
	user     string
	password string
	hc       *http.Client
	redacted string
}

// Options the driver takes on sources and targets.
const (
	// OptCAFile is a PEM file of the CA that signed the server's certificate.
	OptCAFile = "ca_file"
	// OptWorkers is how many bulk requests run at once (default: the node's
	// processors, at most 8).
	OptWorkers = "workers"
	// OptBulkBytes is the size of one bulk request body (default 8 MiB).
	OptBulkBytes = "bulk_bytes"
)

// ErrConnect wraps failures to reach or authenticate to the server, before
// anything is changed.
var ErrConnect = errors.New("cannot use the search server")

// newClient parses http(s)://[user:password@]host:port[/index,pattern] and
// returns the client and the path's index patterns.
func newClient(raw string, opt func(string, string) string) (*client, []string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("want an http(s)://[user:password@]host:port[/index-pattern,...] URL, got %s", driver.Redact(raw))
	}
	c := &client{redacted: driver.Redact(raw)}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	var patterns []string
	for _, p := range strings.Split(strings.Trim(u.Path, "/"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	c.base = &url.URL{Scheme: u.Scheme, Host: u.Host}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
		MaxIdleConns: 32, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if f := opt(OptCAFile, ""); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("option %s: %w", OptCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("option %s: %s holds no PEM certificate", OptCAFile, f)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.hc = &http.Client{Transport: tr}
	return c, patterns, nil
}

// httpError is a non-2xx answer.
type httpError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// do sends one request; body may be nil, []byte, or an io.Reader of NDJSON.
// A 2xx answer is decoded into out when out is not nil.
func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r, ctype = b, "application/x-ndjson"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, r)
	if err != nil {
		return err
	}
	if r != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connectError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return &httpError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return nil
}

// connectError phrases transport failures, TLS ones with what to do.
func (c *client) connectError(err error) error {
	var ue *x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ue) || errors.As(err, &ce):
		return fmt.Errorf("%w %s: its TLS certificate is not trusted (give the CA that signed it as option %s): %w", ErrConnect, c.redacted, OptCAFile, err)
	case errors.As(err, &he):
		return fmt.Errorf("%w %s: its TLS certificate is for another host: %w", ErrConnect, c.redacted, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w %s: it speaks plain HTTP; use an http:// URL: %w", ErrConnect, c.redacted, err)
	case strings.Contains(err.Error(), "malformed HTTP response"):
		return fmt.Errorf("%w %s: it speaks TLS; use an https:// URL: %w", ErrConnect, c.redacted, err)
	}
	return fmt.Errorf("%w %s: %w", ErrConnect, c.redacted, err)
}

// serverInfo is the answer of GET /.
type serverInfo struct {
	Version struct {
		Number       string `json:"number"`
		Distribution string `json:"distribution"`
	} `json:"version"`
}

// hello checks that the server answers and accepts the credentials, before
// anything is read or changed.
func (c *client) hello(ctx context.Context) (serverInfo, error) {
	var info serverInfo
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := c.do(ctx, http.MethodGet, "/", nil, &info)
	switch statusOf(err) {
	case 0:
	case http.StatusUnauthorized:
		return info, fmt.Errorf("%w %s: authentication failed (check the user and password in the URL)", ErrConnect, c.redacted)
	case http.StatusForbidden:
		return info, fmt.Errorf("%w %s: the user may not read cluster information (it needs the cluster monitor privilege)", ErrConnect, c.redacted)
	case http.StatusBadRequest:
		if strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
			return info, fmt.Errorf("%w %s: it speaks TLS; use an https:// URL", ErrConnect, c.redacted)
		}
		return info, fmt.Errorf("%w %s: %w", ErrConnect, c.redacted, err)
	default:
		return info, fmt.Errorf("%w %s: %w", ErrConnect, c.redacted, err)
	}
	if err != nil {
		return info, err
	}
	if info.Version.Distribution == "" {
		info.Version.Distribution = "elasticsearch"
	}
	return info, nil
}

// esc escapes an index name for a URL path.
func esc(name string) string { return url.PathEscape(name) }
