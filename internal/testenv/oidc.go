package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// OIDCProvider is a running OpenID Connect provider: test/oidcprovider,
// zitadel/oidc's OpenID Provider with its example storage and login pages
// (`make tools` builds it). It serves discovery, JWKS, the device
// authorization flow, the authorization code flow with PKCE on a loopback
// redirect, and refresh tokens.
type OIDCProvider struct {
	Issuer     string // http://127.0.0.1:PORT, also the base URL
	AdminToken string // for SetGroups
	Dir        string
}

// OIDCUser is a user who can log in at the provider.
type OIDCUser struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups"`
}

// OIDCClient is a public client of the provider (device flow, code flow
// with PKCE on any loopback port of its redirect URIs, refresh tokens).
type OIDCClient struct {
	ID           string   `json:"id"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// IDTokenLifetimeSeconds: 0 is the provider's default (1 h).
	IDTokenLifetimeSeconds int `json:"id_token_lifetime_seconds,omitempty"`
}

// OIDCProviderOptions are the provider's users and clients.
type OIDCProviderOptions struct {
	Users   []OIDCUser   `json:"users"`
	Clients []OIDCClient `json:"clients"`
}

// StartOIDCProvider starts an OpenID Connect provider for the test and
// stops it at cleanup.
func StartOIDCProvider(t testing.TB, opts OIDCProviderOptions) *OIDCProvider {
	t.Helper()
	p, stop, err := RunOIDCProvider(t.Context(), "", opts)
	handle(t, "OIDC provider (test/oidcprovider)", stop, err)
	return p
}

// RunOIDCProvider starts the provider in a new directory under dir
// (os.TempDir() when empty); stop ends it and removes the directory.
func RunOIDCProvider(ctx context.Context, dir string, opts OIDCProviderOptions) (*OIDCProvider, func() error, error) {
	server, err := findBinary("oidcprovider", filepath.Join(ToolsDir(), "bin"))
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "oidc")
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, nil, err
	}
	conf := filepath.Join(root, "config.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		_ = stopper(nil, root)()
		return nil, nil, fmt.Errorf("write OIDC provider config: %w", err)
	}
	p := &OIDCProvider{AdminToken: randomSecret(24), Dir: root}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		pr, err := startProcess(procSpec{
			name:    "oidcprovider",
			path:    server,
			args:    []string{"--listen", addr, "--config", conf},
			env:     []string{"OIDCPROVIDER_ADMIN_TOKEN=" + p.AdminToken},
			dir:     root,
			logPath: filepath.Join(root, "oidcprovider.log"),
		})
		if err != nil {
			return nil, err
		}
		p.Issuer = "http://" + addr
		if err := pr.waitReady(ctx, p.ping); err != nil {
			_ = pr.stop()
			return nil, err
		}
		return pr, nil
	})
	if err != nil {
		_ = stopper(nil, root)()
		return nil, nil, fmt.Errorf("start oidcprovider in %s: %w", root, err)
	}
	return p, stopper(proc, root), nil
}

func (p *OIDCProvider) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: %s", resp.Status)
	}
	return nil
}

// SetGroups changes a user's groups at the provider, as an administrator
// of the identity provider would; tokens issued from now on carry them.
func (p *OIDCProvider) SetGroups(t testing.TB, user string, groups ...string) {
	t.Helper()
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(groups)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, p.Issuer+"/admin/users/"+url.PathEscape(user)+"/groups", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: set groups of %s: %v", user, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("testenv: set groups of %s: %s %s", user, resp.Status, body)
	}
}

// ApproveDevice does what the user does in a browser for the device flow:
// opens the verification page, logs in and allows the device with this
// user code.
func (p *OIDCProvider) ApproveDevice(ctx context.Context, userCode, user, password string) error {
	c := browser()
	resp, err := postForm(ctx, c, p.Issuer+"/device/login", url.Values{"user_code": {userCode}, "username": {user}, "password": {password}})
	if err != nil {
		return fmt.Errorf("device login: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "confirm?action=allowed") {
		return fmt.Errorf("device login of %s refused: %s", user, firstLine(string(body)))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer+"/device/confirm?action=allowed", nil)
	resp, err = c.Do(req)
	if err != nil {
		return fmt.Errorf("device confirm: %w", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "allowed") {
		return fmt.Errorf("device confirm: %s", firstLine(string(body)))
	}
	return nil
}

// BrowserLogin does what a browser does with an authorization URL: opens
// it, logs the user in on the provider's page and follows the redirects
// back to the client's loopback redirect URI (which gets the code).
func (p *OIDCProvider) BrowserLogin(ctx context.Context, authURL, user, password string) error {
	c := browser()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("open %s: %w", authURL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if id == "" {
		return fmt.Errorf("the provider showed no login page for %s (ended at %s, %s)", authURL, resp.Request.URL, resp.Status)
	}
	resp, err = postForm(ctx, c, p.Issuer+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {password}})
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Request.URL.String(), p.Issuer) {
		return fmt.Errorf("log in of %s: %s at %s: %s", user, resp.Status, resp.Request.URL, firstLine(string(body)))
	}
	return nil
}

func postForm(ctx context.Context, c *http.Client, u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(req)
}

// browser is an HTTP client keeping cookies and following redirects.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
