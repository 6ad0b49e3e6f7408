package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
)

// SessionCookie holds the browser's session: "m:NAME:TOKEN" for a token
// the console minted at sign-in (sign-out revokes it by its name), or
// "t:TOKEN" for the token signed in with (the admin's, an exchanged one).
const SessionCookie = "unikube_session"

// sessionTokenPrefix names the tokens a sign-in mints, so users can tell
// them apart on the tokens page.
const sessionTokenPrefix = "console-session-"

type sessionKey struct{}

// session is the signed-in caller of one request.
type session struct {
	cookie string // the cookie's value, the CSRF token's key
	token  string
	minted string // name of the session token the console minted
	who    client.Whoami
	api    *client.Client
	csrf   string
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// session wraps a page or action that needs a signed-in caller. A POST
// must carry the session's CSRF token.
func (c *Console) session(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(SessionCookie)
		if err != nil || ck.Value == "" {
			c.toSignin(w, r)
			return
		}
		s := &session{cookie: ck.Value}
		switch {
		case strings.HasPrefix(ck.Value, "m:") && strings.Contains(ck.Value[2:], ":"):
			s.minted, s.token, _ = strings.Cut(ck.Value[2:], ":")
		case strings.HasPrefix(ck.Value, "t:"):
			s.token = ck.Value[2:]
		default:
			c.toSignin(w, r)
			return
		}
		s.csrf = csrfToken(ck.Value)
		if r.Method == http.MethodPost {
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				c.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from the console, so nothing was changed. Reload the page and try again.")
				return
			}
		}
		s.api = c.base.WithToken(s.token)
		if s.who, err = s.api.Whoami(r.Context()); err != nil {
			if errors.Is(err, client.ErrUnauthorized) {
				clearSession(w, r)
				c.toSignin(w, r)
				return
			}
			c.fail(w, r, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	}
}

func (c *Console) toSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		c.renderError(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
		return
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// csrfToken is derived from the session cookie: a page of another origin
// cannot read the cookie, so it cannot compute the token.
func csrfToken(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("unikube-console-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func setSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
}

// overTLS says whether the browser reached the console over TLS, also
// through a proxy that terminates it (X-Forwarded-Proto). The header is
// trusted only to make the cookie stricter: a forged one just keeps that
// client's cookie off plain HTTP.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// signinPage shows the sign-in form, with single sign-on when the platform
// trusts an identity provider.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Next": safeNext(r.URL.Query().Get("next"))}
	if st, err := c.base.OIDCSettings(r.Context()); err == nil {
		data["SSO"] = st
	}
	c.render(w, r, http.StatusOK, "signin", "Sign in", data)
}

// signin checks the token by asking the API who it is, then mints a
// session token from it (a user's token), or keeps it (the admin's, and
// tokens that cannot mint: the session then ends only with the token). An
// identity provider's token is exchanged for a platform token first.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	secret := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	again := func(status int, msg string) {
		data := map[string]any{"Next": next, "Error": msg}
		if st, err := c.base.OIDCSettings(r.Context()); err == nil {
			data["SSO"] = st
		}
		c.render(w, r, status, "signin", "Sign in", data)
	}
	if secret == "" {
		again(http.StatusBadRequest, "Paste a platform token (it starts with "+auth.TokenPrefix+").")
		return
	}
	ctx := r.Context()
	c.endPreviousSession(r)
	// An identity provider's token is a JWT; anything else is a platform
	// token (the admin's, from the chart's Secret, has no uks_ prefix).
	if auth.LooksLikeJWT(secret) {
		if _, err := c.base.OIDCSettings(ctx); err != nil {
			again(http.StatusUnauthorized, "That looks like an identity provider's token, and this platform has no single sign-on: paste a platform token.")
			return
		}
		ex, err := c.base.ExchangeOIDCToken(ctx, secret, 0) // the platform's exchange lifetime
		if err != nil {
			again(http.StatusUnauthorized, "The identity provider's token was refused: "+apiMessage(err))
			return
		}
		// Mint a session token from the exchanged one as for a token
		// sign-in: sign-out can then revoke what the cookie holds.
		secret = ex.AccessToken
	}
	api := c.base.WithToken(secret)
	who, err := api.Whoami(ctx)
	if err != nil {
		again(http.StatusUnauthorized, "That token was not accepted: it may be mistyped, revoked or expired.")
		return
	}
	if who.User == "" || who.Admin {
		setSession(w, r, "t:"+secret, 0)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	created, err := api.CreateToken(ctx, client.TokenRequest{Name: sessionTokenPrefix + randomSuffix(), Groups: who.Groups,
		TTLSeconds: int64(c.cfg.SessionTTL.Seconds())})
	if err != nil {
		if errors.Is(err, client.ErrForbidden) {
			setSession(w, r, "t:"+secret, 0) // a scoped token: it may still browse
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		c.fail(w, r, err)
		return
	}
	setSession(w, r, "m:"+created.Name+":"+created.Secret, int(c.cfg.SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout revokes a session token the console minted and clears the cookie.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	if s.minted != "" {
		if err := s.api.RevokeToken(r.Context(), s.minted); err != nil && !errors.Is(err, client.ErrNotFound) {
			c.fail(w, r, err)
			return
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}

// endPreviousSession revokes the session token a sign-in replaces, so
// signing in as someone else leaves no live session token behind.
func (c *Console) endPreviousSession(r *http.Request) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || !strings.HasPrefix(ck.Value, "m:") {
		return
	}
	name, token, ok := strings.Cut(ck.Value[2:], ":")
	if !ok {
		return
	}
	_ = c.base.WithToken(token).RevokeToken(r.Context(), name) // already gone: nothing to end
}

// safeNext keeps a post-sign-in redirect on this site. Browsers drop tabs
// and newlines from a URL and read a backslash as a slash, so "/<TAB>/host"
// is "//host" to them: such a path is refused whole.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return next
}

// inProcess is the console's transport: it hands each API request to the
// API's handler in this process.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr = "console"
	r.RequestURI = req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{Status: http.StatusText(rec.status), StatusCode: rec.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req}, nil
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
