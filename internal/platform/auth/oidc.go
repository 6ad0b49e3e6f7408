package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// KindOIDC is the kind of a principal authenticated by an OpenID Connect
// token: it is not stored, it lives as long as the token.
const KindOIDC = "oidc"

// ErrOIDCUnavailable: the identity provider's discovery document could not
// be fetched; retrying later may help, the token may well be valid.
var ErrOIDCUnavailable = errors.New("the OIDC identity provider is unreachable")

// Default claims of OIDCConfig.
const (
	DefaultUsernameClaim = "sub"
	DefaultGroupsClaim   = "groups"
)

// OIDCConfig says which OpenID Connect provider the platform trusts and
// how its tokens become principals.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL exactly as its tokens carry it
	// in "iss"; its discovery document and keys are fetched from there.
	Issuer string
	// ClientID is the audience tokens must carry ("aud"): the client the
	// CLI logs in with. Audiences adds more (e.g. the audience a CI
	// system's workload identity token is requested for).
	ClientID  string
	Audiences []string
	// UsernameClaim holds the user name (default "sub"); GroupsClaim
	// holds the groups, a list of strings or one string (default
	// "groups"). A token whose user name is not a valid principal name is
	// refused; group names that are not valid are skipped.
	UsernameClaim string
	GroupsClaim   string
	// HTTPClient fetches discovery and keys (default http.DefaultClient).
	HTTPClient *http.Client
}

// OIDC verifies OpenID Connect tokens (ID tokens, or JWT access tokens)
// against one provider: signature by the provider's published keys
// (discovery + JWKS, refetched when a new key ID appears), issuer,
// audience and expiry.
type OIDC struct {
	cfg OIDCConfig
	now func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// NewOIDC checks the configuration. The provider is contacted on the
// first token, so the platform starts while the provider is down.
func NewOIDC(cfg OIDCConfig, now func() time.Time) (*OIDC, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oidc: an issuer URL is required (--oidc-issuer)")
	}
	if !strings.HasPrefix(cfg.Issuer, "https://") && !strings.HasPrefix(cfg.Issuer, "http://") {
		return nil, fmt.Errorf("oidc: issuer %q: want an http(s) URL", cfg.Issuer)
	}
	if cfg.ClientID == "" && len(cfg.Audiences) == 0 {
		return nil, errors.New("oidc: a client ID is required (--oidc-client-id): tokens must name this platform as their audience")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = DefaultUsernameClaim
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if now == nil {
		now = time.Now
	}
	return &OIDC{cfg: cfg, now: now}, nil
}

// Issuer returns the trusted issuer.
func (o *OIDC) Issuer() string { return o.cfg.Issuer }

// ClientID returns the client interactive logins use.
func (o *OIDC) ClientID() string { return o.cfg.ClientID }

func (o *OIDC) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if o.cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, o.cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discover %s: %v", ErrOIDCUnavailable, o.cfg.Issuer, err)
	}
	// The audience is checked below against ClientID and Audiences.
	o.verifier = p.VerifierContext(context.WithoutCancel(ctx), &oidc.Config{SkipClientIDCheck: true, Now: o.now})
	return o.verifier, nil
}

// Identity is what a verified token says about its bearer.
type Identity struct {
	User    string
	Groups  []string
	Subject string
	Expires time.Time
}

// Verify checks a raw token and reads the identity from it. A refused
// token's error wraps ErrUnauthenticated and says why.
func (o *OIDC) Verify(ctx context.Context, raw string) (Identity, error) {
	// Say plainly when a token comes from another provider (the signature
	// check below would fail on it with a vaguer message).
	if iss := unverifiedIssuer(raw); iss != "" && iss != o.cfg.Issuer {
		return Identity{}, fmt.Errorf("%w: the OIDC token was issued by a different provider, %s; this platform trusts only %s (--oidc-issuer)", ErrUnauthenticated, iss, o.cfg.Issuer)
	}
	v, err := o.verifierFor(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Identity{}, fmt.Errorf("%w: the OIDC token expired at %s: log in again (helm state login) or fetch a fresh one", ErrUnauthenticated, exp.Expiry.UTC().Format(time.RFC3339))
		}
		return Identity{}, fmt.Errorf("%w: OIDC token refused (this platform trusts tokens of %s): %v", ErrUnauthenticated, o.cfg.Issuer, err)
	}
	want := append([]string{o.cfg.ClientID}, o.cfg.Audiences...)
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return a != "" && slices.Contains(want, a) }) {
		return Identity{}, fmt.Errorf("%w: the OIDC token is for audience %s, not this platform (%s)", ErrUnauthenticated, strings.Join(tok.Audience, ","), strings.Join(slices.DeleteFunc(want, func(s string) bool { return s == "" }), ","))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: OIDC token claims: %v", ErrUnauthenticated, err)
	}
	user, err := o.userOf(claims)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: user, Groups: groupsOf(claims[o.cfg.GroupsClaim]), Subject: tok.Subject, Expires: tok.Expiry}, nil
}

// userOf reads the user name from verified claims. An e-mail address the
// provider says it has not verified is refused as a user name: whoever
// typed another person's address at the provider would act as that user
// here (the rule of Kubernetes' OIDC authenticator).
func (o *OIDC) userOf(claims map[string]any) (string, error) {
	user, _ := claims[o.cfg.UsernameClaim].(string)
	if user == "" {
		return "", fmt.Errorf("%w: the OIDC token has no string claim %q for the user name (--oidc-username-claim)", ErrUnauthenticated, o.cfg.UsernameClaim)
	}
	if err := ValidatePrincipalName(user); err != nil {
		return "", fmt.Errorf("%w: claim %q of the OIDC token is not a usable user name: %v (pick another --oidc-username-claim)", ErrUnauthenticated, o.cfg.UsernameClaim, err)
	}
	if v, ok := claims["email_verified"]; ok && o.cfg.UsernameClaim == "email" && v != true {
		return "", fmt.Errorf("%w: the OIDC token's e-mail address %s is not verified by %s (email_verified is %v): verify it there, or pick another --oidc-username-claim", ErrUnauthenticated, user, o.cfg.Issuer, v)
	}
	return user, nil
}

// unverifiedIssuer reads "iss" from a JWT without verifying it, only to
// phrase an error; "" when it cannot be read.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil || len(c.Iss) > 512 {
		return ""
	}
	return c.Iss
}

// groupsOf reads a groups claim: a list of strings or a single string.
// Names no grant could use (characters outside a principal name) are
// skipped rather than refusing the whole login.
func groupsOf(v any) []string {
	var raw []string
	switch g := v.(type) {
	case string:
		raw = []string{g}
	case []any:
		for _, e := range g {
			if s, ok := e.(string); ok {
				raw = append(raw, s)
			}
		}
	}
	var out []string
	for _, g := range raw {
		if ValidatePrincipalName(g) == nil && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// LooksLikeJWT says whether a bearer secret could be a JWT (three
// base64url parts) rather than a platform token.
func LooksLikeJWT(s string) bool {
	return !strings.HasPrefix(s, TokenPrefix) && strings.Count(s, ".") == 2
}

// oidcPrincipal is the principal of a verified identity: user:NAME with
// group:G for each group, expiring with the token. Its ID is derived from
// the token, so cached roles never cross identities.
func oidcPrincipal(id Identity, hash, issuer string, now time.Time) Principal {
	exp := id.Expires
	return Principal{Token: store.Token{Token: apitypes.Token{
		ID: "oidc-" + hash[:24], Name: "oidc", Kind: KindOIDC, User: id.User, Groups: id.Groups,
		CreatedAt: now.UTC(), CreatedBy: "oidc:" + issuer, ExpiresAt: &exp,
	}}}
}
