package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// OIDCLogin is the single sign-on part of the login file: the refresh
// token renews the ID token the platform is called with.
type OIDCLogin struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	TokenURL     string    `json:"token_url"`
	Scopes       []string  `json:"scopes"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token"`
	Expiry       time.Time `json:"expiry"` // of IDToken
}

// refreshMargin: an ID token expiring sooner is renewed before a command,
// so it does not expire in the middle of one.
const refreshMargin = 2 * time.Minute

// ssoTimeout bounds how long a login waits for the user at the provider.
const ssoTimeout = 10 * time.Minute

func (l *OIDCLogin) oauth2Config() *oauth2.Config {
	return &oauth2.Config{ClientID: l.ClientID, Endpoint: oauth2.Endpoint{TokenURL: l.TokenURL, AuthStyle: oauth2.AuthStyleInParams}, Scopes: l.Scopes}
}

// ssoLoginOptions are the flags of helm state login for single sign-on.
type ssoLoginOptions struct {
	browser          bool
	issuer, clientID string
	scopes           []string
}

// ssoLogin logs in at the platform's OpenID Connect provider (device
// authorization flow, or the authorization code flow with PKCE on a
// loopback redirect when browser is set) and returns the login to store.
func (s *Settings) ssoLogin(ctx context.Context, pc *client.Client, o ssoLoginOptions) (*OIDCLogin, error) {
	if o.issuer == "" || o.clientID == "" {
		set, err := pc.OIDCSettings(ctx)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
			return nil, usageErrorf("the platform at %s has no single sign-on: log in with a token (--token-stdin), or name the provider with --oidc-issuer and --oidc-client-id", pc.Endpoint())
		}
		if err != nil {
			return nil, platformErr("ask the platform for its single sign-on settings", err)
		}
		o.issuer = firstNonEmpty(o.issuer, set.Issuer)
		o.clientID = firstNonEmpty(o.clientID, set.ClientID)
	}
	ctx, cancel := context.WithTimeout(ctx, ssoTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, o.issuer)
	if err != nil {
		return nil, fmt.Errorf("discover the identity provider %s: %w", o.issuer, err)
	}
	conf := &oauth2.Config{ClientID: o.clientID, Endpoint: provider.Endpoint(),
		Scopes: append([]string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}, o.scopes...)}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: no secret
	var tok *oauth2.Token
	if o.browser {
		tok, err = s.browserFlow(ctx, conf)
	} else {
		tok, err = s.deviceFlow(ctx, conf)
	}
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("the identity provider %s returned no ID token (is the openid scope allowed for client %s?)", o.issuer, o.clientID)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: o.clientID}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token of %s: %w", o.issuer, err)
	}
	if tok.RefreshToken == "" {
		fmt.Fprintf(s.Err, "warning: %s issued no refresh token (offline_access): log in again when the ID token expires at %s\n", o.issuer, idt.Expiry.Local().Format(time.Kitchen))
	}
	return &OIDCLogin{Issuer: o.issuer, ClientID: o.clientID, TokenURL: conf.Endpoint.TokenURL, Scopes: conf.Scopes,
		RefreshToken: tok.RefreshToken, IDToken: raw, Expiry: idt.Expiry}, nil
}

func (s *Settings) deviceFlow(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, usageErrorf("the identity provider offers no device authorization: log in with --browser")
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the device login: %w", err)
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(s.Err, "To log in, open %s\nand check that it shows the code %s\n", da.VerificationURIComplete, da.UserCode)
	} else {
		fmt.Fprintf(s.Err, "To log in, open %s\nand enter the code %s\n", da.VerificationURI, da.UserCode)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("device login: %w", err)
	}
	return tok, nil
}

// browserFlow runs the authorization code flow with PKCE: the browser
// comes back to a one-time server on a loopback port (RFC 8252).
func (s *Settings) browserFlow(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's redirect: %w", err)
	}
	defer ln.Close()
	conf.RedirectURL = fmt.Sprintf("http://%s/callback", ln.Addr())
	state, verifier := randomState(), oauth2.GenerateVerifier()
	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			http.Error(w, "login failed: the state does not match; start helm state login again", http.StatusBadRequest)
			return // not ours: keep waiting
		case q.Get("error") != "":
			res.err = fmt.Errorf("the identity provider refused the login: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("the identity provider sent no authorization code")
		default:
			res.code = q.Get("code")
		}
		if res.err != nil {
			http.Error(w, html.EscapeString(res.err.Error()), http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "Logged in. You can close this window and return to the terminal.")
		}
		select {
		case done <- res:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	fmt.Fprintf(s.Err, "To log in, open this URL in a browser:\n%s\n", authURL)
	openBrowser(s.Getenv, authURL)
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("waited %s for the browser login: %w", ssoTimeout, ctx.Err())
	case res := <-done:
		if res.err != nil {
			return nil, res.err
		}
		tok, err := conf.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
		if err != nil {
			return nil, fmt.Errorf("exchange the authorization code: %w", err)
		}
		return tok, nil
	}
}

// openBrowser tries $BROWSER, else the desktop's opener; the URL is
// printed either way, so a failure is not an error.
func openBrowser(getenv func(string) string, url string) {
	var cmd *exec.Cmd
	switch b := getenv("BROWSER"); {
	case b != "":
		cmd = exec.Command(b, url) //nolint:gosec // the user's own $BROWSER
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", url)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if _, err := exec.LookPath("xdg-open"); err != nil {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

func randomState() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ssoToken returns the login's ID token, renewed with the refresh token
// first when it expires within refreshMargin; a renewed login is stored.
func (s *Settings) ssoToken(ctx context.Context, l *Login) (string, error) {
	o := l.OIDC
	if time.Until(o.Expiry) > refreshMargin {
		return o.IDToken, nil
	}
	again := fmt.Sprintf("helm state login %s --sso", l.Endpoint)
	if o.RefreshToken == "" {
		return "", usageErrorf("the single sign-on login to %s expired at %s: run %s", l.Endpoint, o.Expiry.Local().Format(time.RFC3339), again)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tok, err := o.oauth2Config().TokenSource(ctx, &oauth2.Token{RefreshToken: o.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized) {
		return "", usageErrorf("the single sign-on session at %s ended (%s): run %s", o.Issuer, re.ErrorCode, again)
	}
	if err != nil {
		return "", fmt.Errorf("renew the single sign-on login at %s: %w", o.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", usageErrorf("%s renewed the login without an ID token: run %s", o.Issuer, again)
	}
	exp, err := jwtExpiry(raw)
	if err != nil {
		return "", fmt.Errorf("the renewed ID token of %s: %w", o.Issuer, err)
	}
	o.IDToken, o.Expiry = raw, exp
	if tok.RefreshToken != "" { // providers may rotate it
		o.RefreshToken = tok.RefreshToken
	}
	if err := s.writeLogin(*l); err != nil {
		return "", err
	}
	return raw, nil
}

// jwtExpiry reads "exp" of a JWT; the platform verifies the token, the
// client only needs to know when to renew it.
func jwtExpiry(raw string) (time.Time, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("decode: %w", err)
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return time.Time{}, fmt.Errorf("decode: %w", err)
	}
	n, err := c.Exp.Float64()
	if err != nil {
		return time.Time{}, errors.New("no exp claim")
	}
	return time.Unix(int64(n), 0), nil
}
