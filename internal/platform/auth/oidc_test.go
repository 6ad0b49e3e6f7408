package auth

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOIDC_ConfigurationErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		cfg  OIDCConfig
		want string
	}{
		{OIDCConfig{ClientID: "x"}, "--oidc-issuer"},
		{OIDCConfig{Issuer: "login.example.com", ClientID: "x"}, "http(s) URL"},
		{OIDCConfig{Issuer: "https://login.example.com"}, "--oidc-client-id"},
	} {
		if _, err := NewOIDC(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewOIDC(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	o, err := NewOIDC(OIDCConfig{Issuer: "https://login.example.com", Audiences: []string{"ci"}}, nil)
	if err != nil || o.cfg.UsernameClaim != "sub" || o.cfg.GroupsClaim != "groups" {
		t.Errorf("an audience without a client ID: %v %+v, want the default claims", err, o)
	}
}

func TestOIDC_GroupsClaimShapes(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want []string
	}{
		{[]any{"devs", "ops", "devs"}, []string{"devs", "ops"}},
		{"devs", []string{"devs"}},
		{[]any{"/acme/devs", "ok", 7, "", strings.Repeat("a", 200)}, []string{"ok"}},
		{nil, nil},
		{map[string]any{"devs": true}, nil},
	} {
		if got := groupsOf(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("groupsOf(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestOIDC_TellsJWTsFromPlatformTokens(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://idp.example.com","sub":"a"}`))
	jwt := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	if !LooksLikeJWT(jwt) || LooksLikeJWT(TokenPrefix+"a.b.c") || LooksLikeJWT("uks_abc") {
		t.Error("looksLikeJWT confuses JWTs and platform tokens")
	}
	if got := unverifiedIssuer(jwt); got != "https://idp.example.com" {
		t.Errorf("unverifiedIssuer = %q", got)
	}
	for _, bad := range []string{"a.b", "a.!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if got := unverifiedIssuer(bad); got != "" {
			t.Errorf("unverifiedIssuer(%q) = %q, want empty", bad, got)
		}
	}
}

func TestOIDC_PrincipalMatchesUserAndGroupsNotTokenGrants(t *testing.T) {
	p := oidcPrincipal(Identity{User: "alice", Groups: []string{"devs"}}, HashSecret("x"), "https://idp", time.Now())
	if got := p.Subjects(); !slices.Equal(got, []string{"user:alice", "group:devs"}) {
		t.Errorf("subjects = %v, want user:alice and group:devs only", got)
	}
	if p.Name() != "user:alice" || !p.IsOIDC() || p.IsScoped() || p.IsAdmin() {
		t.Errorf("principal %+v", p)
	}
	q := oidcPrincipal(Identity{User: "bob"}, HashSecret("y"), "https://idp", time.Now())
	if p.Token.ID == q.Token.ID {
		t.Error("two identities share an ID (cached roles would cross)")
	}
}

// TestOIDC_EmailUserNameNeedsAVerifiedAddress: with the e-mail address as
// the user name, a token whose provider says the address is unverified is
// refused, or anyone could claim user:victim@corp.example by typing that
// address into their profile at the provider.
func TestOIDC_EmailUserNameNeedsAVerifiedAddress(t *testing.T) {
	o, err := NewOIDC(OIDCConfig{Issuer: "https://idp.example.com", ClientID: "x", UsernameClaim: "email"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims map[string]any
		ok     bool
	}{
		{map[string]any{"email": "olga@corp.example", "email_verified": true}, true},
		{map[string]any{"email": "olga@corp.example"}, true}, // providers that do not say
		{map[string]any{"email": "olga@corp.example", "email_verified": false}, false},
		{map[string]any{"email": "olga@corp.example", "email_verified": "false"}, false},
	} {
		user, err := o.userOf(tc.claims)
		if tc.ok && (err != nil || user != "olga@corp.example") {
			t.Errorf("%v: %q, %v; want olga@corp.example", tc.claims, user, err)
		}
		if !tc.ok && (err == nil || !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "not verified")) {
			t.Errorf("%v: %q, %v; want refused as unverified", tc.claims, user, err)
		}
	}
	sub, _ := NewOIDC(OIDCConfig{Issuer: "https://idp.example.com", ClientID: "x"}, nil)
	if user, err := sub.userOf(map[string]any{"sub": "olga", "email_verified": false}); err != nil || user != "olga" {
		t.Errorf("sub as the user name with an unverified address: %q, %v", user, err)
	}
}
