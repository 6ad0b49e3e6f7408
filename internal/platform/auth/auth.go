// Package auth turns bearer tokens into principals and decides what a
// principal may do: roles per project and per state, the admin superuser,
// download-only job tokens scoped to one version and upload tokens scoped to
// one state. A job or upload token lives only while the token that minted
// it is live and still holds the role it needed to mint it (and, for a job
// token, while its version exists).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// Errors of authentication.
var (
	ErrUnauthenticated = errors.New("missing, unknown, revoked or expired token")
	ErrInvalidSubject  = errors.New("invalid subject")
	ErrInvalidRole     = errors.New("invalid role")
)

// Role is a level of access; each includes the ones below it.
type Role int

// Roles, lowest first.
const (
	RoleNone Role = iota
	RoleViewer
	RoleApplier
	RoleMaintainer
	RoleOwner
)

var roleNames = [...]string{"none", "viewer", "applier", "maintainer", "owner"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole parses owner, maintainer, applier or viewer.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return RoleNone, fmt.Errorf("%w %q: use owner, maintainer, applier or viewer", ErrInvalidRole, s)
}

// ValidateSubject checks "user:NAME", "group:NAME", "token:NAME" or
// "token:USER:NAME" (the token NAME of USER) where each name is 1-128
// characters of [A-Za-z0-9_.@+-].
func ValidateSubject(s string) error {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || (kind != "user" && kind != "group" && kind != "token") {
		return fmt.Errorf("%w %q: want user:NAME, group:NAME, token:NAME or token:USER:NAME", ErrInvalidSubject, s)
	}
	if user, tok, ok := strings.Cut(name, ":"); ok && kind == "token" {
		if err := ValidatePrincipalName(user); err != nil {
			return fmt.Errorf("%w %q: user: %v", ErrInvalidSubject, s, err)
		}
		name = tok
	}
	if err := ValidatePrincipalName(name); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidSubject, s, err)
	}
	return nil
}

// TokenSubject splits a token grant subject into the owning user it names
// ("" for token:NAME) and the token name; ok is false for other subjects.
func TokenSubject(s string) (user, name string, ok bool) {
	rest, ok := strings.CutPrefix(s, "token:")
	if !ok {
		return "", "", false
	}
	if u, n, two := strings.Cut(rest, ":"); two {
		return u, n, true
	}
	return "", rest, true
}

// ValidatePrincipalName checks a user, group or token name.
func ValidatePrincipalName(name string) error {
	if len(name) == 0 || len(name) > 128 {
		return errors.New("name must be 1-128 characters")
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.@+-", c)
		if !ok {
			return fmt.Errorf("name %q may contain only A-Z, a-z, 0-9 and _ . @ + -", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("name %q is not allowed", name)
	}
	return nil
}

// TokenPrefix starts every secret this server issues, so leaked tokens are
// easy to recognise by secret scanners.
const TokenPrefix = "uks_"

// NewSecret returns a fresh random token secret and its stored hash.
func NewSecret() (secret, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret), nil
}

// NewID returns a random identifier for tokens and runs.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HashSecret is how secrets are stored: tokens are 256-bit random, so a plain
// sha256 resists guessing; a slow KDF would only slow down every request.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Principal is the authenticated caller.
type Principal struct {
	Token store.Token
}

// IsAdmin reports whether the principal is the superuser.
func (p Principal) IsAdmin() bool { return p.Token.Kind == store.TokenAdmin }

// IsJob reports whether the principal is a version-scoped job token.
func (p Principal) IsJob() bool { return p.Token.Kind == store.TokenJob }

// IsUpload reports whether the principal is a state-scoped upload token.
func (p Principal) IsUpload() bool { return p.Token.Kind == store.TokenUpload }

// IsOIDC reports whether the principal was authenticated by an OpenID
// Connect token (not stored; see Authenticator.OIDC).
func (p Principal) IsOIDC() bool { return p.Token.Kind == KindOIDC }

// IsScoped reports whether the principal is a job or upload token: it holds
// no roles and may not manage tokens, projects or grants.
func (p Principal) IsScoped() bool { return p.IsJob() || p.IsUpload() }

// Name is how the principal appears in created_by fields and logs.
func (p Principal) Name() string {
	switch {
	case p.IsAdmin():
		return "admin"
	case p.IsJob():
		return "job:" + p.Token.Name
	case p.IsUpload():
		return "upload:" + p.Token.Name
	case p.Token.User != "":
		return "user:" + p.Token.User
	}
	return "token:" + p.Token.Name
}

// Subjects lists the grant subjects the principal matches. Token subjects
// match only grants bound to the token's user (see store.RolesFor).
func (p Principal) Subjects() []string {
	if p.IsScoped() {
		return nil
	}
	var out []string
	if !p.IsOIDC() { // an OIDC identity is no token: token:NAME grants name stored tokens
		out = append(out, "token:"+p.Token.Name)
	}
	if p.Token.User != "" && !p.IsOIDC() {
		out = append(out, "token:"+p.Token.User+":"+p.Token.Name)
	}
	if p.Token.User != "" {
		out = append(out, "user:"+p.Token.User)
	}
	for _, g := range p.Token.Groups {
		out = append(out, "group:"+g)
	}
	return out
}

// Authenticator resolves bearer tokens.
type Authenticator struct {
	Store *store.Store
	Now   func() time.Time
	// CacheTTL keeps validated tokens and roles in memory this long (0: no
	// cache). A revocation, grant change or version deletion on this server
	// takes effect at once (ForgetTokens, ForgetRoles); on other replicas
	// after at most CacheTTL.
	CacheTTL time.Duration
	// OIDC, when set, also accepts tokens of an OpenID Connect provider
	// (see OIDC.Verify); platform tokens keep working beside them.
	OIDC *OIDC

	mu    sync.Mutex
	cache map[string]cachedToken
	roles map[roleKey]cachedRole
}

type roleKey struct{ token, project, state string }

type cachedRole struct {
	r       Role
	fetched time.Time
}

// ForgetRoles drops every cached role and validated token (after a grant
// changed or a version was deleted on this server: both can end a job or
// upload token; other replicas see it after at most CacheTTL).
func (a *Authenticator) ForgetRoles() {
	a.mu.Lock()
	a.roles = nil
	a.cache = nil
	a.mu.Unlock()
}

type cachedToken struct {
	t       store.Token
	fetched time.Time
}

// ForgetTokens drops every cached token (after a revocation, which also
// ends the tokens the revoked one minted).
func (a *Authenticator) ForgetTokens() {
	a.mu.Lock()
	a.cache = nil
	a.mu.Unlock()
}

// BearerSecret returns the credentials of an "Authorization: Bearer X"
// header; the scheme is case-insensitive (RFC 7235), so "bearer X" works.
func BearerSecret(header string) (string, bool) {
	scheme, secret, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

// Authenticate resolves an Authorization header value.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	secret, ok := BearerSecret(header)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	hash := HashSecret(secret)
	now := a.Now()
	if a.CacheTTL > 0 {
		a.mu.Lock()
		c, ok := a.cache[hash]
		a.mu.Unlock()
		if ok && now.Sub(c.fetched) < a.CacheTTL && c.t.Live(now) {
			return Principal{Token: c.t}, nil
		}
	}
	if LooksLikeJWT(secret) {
		return a.authenticateOIDC(ctx, secret, hash, now)
	}
	t, err := a.Store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if !t.Live(now) {
		return Principal{}, ErrUnauthenticated
	}
	if t.ParentID != "" {
		// The revocation cascade misses a child minted while it ran or by
		// a replica still trusting its cached parent: check the chain.
		ok, err := a.Store.MintersLive(ctx, t.ParentID, now)
		if err != nil {
			return Principal{}, err
		}
		if !ok {
			return Principal{}, fmt.Errorf("%w: a token up its chain of minters is revoked or expired", ErrUnauthenticated)
		}
	}
	if err := a.checkScoped(ctx, t, now); err != nil {
		return Principal{}, err
	}
	if a.CacheTTL > 0 {
		a.mu.Lock()
		if a.cache == nil || len(a.cache) > 10000 { // bound memory; refill from the database
			a.cache = map[string]cachedToken{}
		}
		a.cache[hash] = cachedToken{t: t, fetched: now}
		a.mu.Unlock()
	}
	return Principal{Token: t}, nil
}

// authenticateOIDC verifies an OpenID Connect token; the identity is
// cached like a platform token, never past the token's expiry.
func (a *Authenticator) authenticateOIDC(ctx context.Context, raw, hash string, now time.Time) (Principal, error) {
	if a.OIDC == nil {
		return Principal{}, fmt.Errorf("%w: this looks like an OIDC token, but this platform trusts no OIDC provider (--oidc-issuer): use a platform token", ErrUnauthenticated)
	}
	id, err := a.OIDC.Verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	p := oidcPrincipal(id, hash, a.OIDC.Issuer(), now)
	if a.CacheTTL > 0 {
		a.mu.Lock()
		if a.cache == nil || len(a.cache) > 10000 {
			a.cache = map[string]cachedToken{}
		}
		a.cache[hash] = cachedToken{t: p.Token, fetched: now}
		a.mu.Unlock()
	}
	return p, nil
}

// VerifyOIDC checks an OpenID Connect token (for a token exchange) and
// returns its identity.
func (a *Authenticator) VerifyOIDC(ctx context.Context, raw string) (Identity, error) {
	if a.OIDC == nil {
		return Identity{}, fmt.Errorf("%w: this platform trusts no OIDC provider (--oidc-issuer)", ErrUnauthenticated)
	}
	if !LooksLikeJWT(raw) {
		return Identity{}, fmt.Errorf("%w: the subject token is not a JWT issued by %s", ErrUnauthenticated, a.OIDC.Issuer())
	}
	return a.OIDC.Verify(ctx, raw)
}

// checkScoped ends a job or upload token whose minter is gone, revoked or
// expired, or no longer holds the role minting needed on the token's state
// (applier for a job token, maintainer for an upload token), and a job
// token whose version was deleted. Checked on every lookup, so removing a
// grant takes effect without finding and revoking the tokens it allowed.
func (a *Authenticator) checkScoped(ctx context.Context, t store.Token, now time.Time) error {
	var want Role
	switch t.Kind {
	case store.TokenJob:
		want = RoleApplier
	case store.TokenUpload:
		want = RoleMaintainer
	default:
		return nil
	}
	if t.ParentID == "" {
		return fmt.Errorf("%w: minted before minters were recorded; mint a new one", ErrUnauthenticated)
	}
	minter, err := a.Store.TokenByID(ctx, t.ParentID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the token that minted it is gone", ErrUnauthenticated)
	}
	if err != nil {
		return err
	}
	if !minter.Live(now) || minter.Kind == store.TokenJob || minter.Kind == store.TokenUpload {
		return fmt.Errorf("%w: the token that minted it is revoked or expired", ErrUnauthenticated)
	}
	role, err := a.RoleOn(ctx, Principal{Token: minter}, t.Project, t.State)
	if err != nil {
		return err
	}
	if role < want {
		return fmt.Errorf("%w: its minter no longer holds %s on %s/%s", ErrUnauthenticated, want, t.Project, t.State)
	}
	if t.Kind == store.TokenJob {
		_, err := a.Store.GetVersionByDigest(ctx, t.Project, t.State, t.VersionDigest)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: its version was deleted", ErrUnauthenticated)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RoleOn returns the principal's effective role on a project, or on a state
// when state is not empty (the highest of its project and state grants).
// Job tokens have no roles; callers check their scope separately.
func (a *Authenticator) RoleOn(ctx context.Context, p Principal, project, state string) (Role, error) {
	if p.IsAdmin() {
		return RoleOwner, nil
	}
	if p.IsScoped() {
		return RoleNone, nil
	}
	key := roleKey{p.Token.ID, project, state}
	now := a.Now()
	if a.CacheTTL > 0 {
		a.mu.Lock()
		c, ok := a.roles[key]
		a.mu.Unlock()
		if ok && now.Sub(c.fetched) < a.CacheTTL {
			return c.r, nil
		}
	}
	names, err := a.Store.RolesFor(ctx, project, state, p.Subjects(), p.Token.User)
	if err != nil {
		return RoleNone, err
	}
	best := RoleNone
	for _, n := range names {
		if r, err := ParseRole(n); err == nil && r > best {
			best = r
		}
	}
	if a.CacheTTL > 0 {
		a.mu.Lock()
		if a.roles == nil || len(a.roles) > 10000 {
			a.roles = map[roleKey]cachedRole{}
		}
		a.roles[key] = cachedRole{r: best, fetched: now}
		a.mu.Unlock()
	}
	return best, nil
}
