package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The single sign-on tests run a real OpenID Connect provider
// (test/oidcprovider: zitadel/oidc's OP) and log in with the device flow
// as `helm state login` does.

const (
	oidcClientID = "unikube-cli"
	alicePW      = "alice-password"
)

func startIdP(t *testing.T) *testenv.OIDCProvider {
	t.Helper()
	return testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users: []testenv.OIDCUser{
			{Name: "alice", Password: alicePW, Groups: []string{"payments-devs", "Bad/Group"}},
			{Name: "bob", Password: "bob-password"},
		},
		Clients: []testenv.OIDCClient{{ID: oidcClientID, RedirectURIs: []string{"http://127.0.0.1/callback"}}},
	})
}

// clock is a platform clock tests move forward.
type clock struct{ skew atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

func startOIDCPlatform(t *testing.T, idp *testenv.OIDCProvider, cfg auth.OIDCConfig, clk *clock) *platformtest.Server {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = idp.Issuer
	}
	if cfg.ClientID == "" {
		cfg.ClientID = oidcClientID
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	return platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = cfg
		if clk != nil {
			o.Now = clk.now
		}
	}))
}

func oauthConfig(idp *testenv.OIDCProvider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: oidcClientID,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: idp.Issuer + "/device_authorization",
			TokenURL:      idp.Issuer + "/oauth/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		Scopes: []string{"openid", "profile", "offline_access"},
	}
}

// deviceLogin logs user in with the device authorization flow: the device
// asks for a code, the user approves it at the provider, the device polls.
func deviceLogin(t *testing.T, idp *testenv.OIDCProvider, user, password string) *oauth2.Token {
	t.Helper()
	ctx := t.Context()
	conf := oauthConfig(idp)
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	if err := idp.ApproveDevice(ctx, da.UserCode, user, password); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("device access token: %v", err)
	}
	return tok
}

func idToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	s, _ := tok.Extra("id_token").(string)
	if s == "" {
		t.Fatal("the provider returned no id_token")
	}
	return s
}

// wantUnauthorized checks err is a 401 whose message contains each of want.
func wantUnauthorized(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("got %v, want 401 Unauthorized", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("401 message %q does not say %q", err, w)
		}
	}
}

func TestOIDC_DeviceLogin_GroupGrant_FollowsTheProvidersGroups(t *testing.T) {
	idp := startIdP(t)
	clk := &clock{}
	srv := startOIDCPlatform(t, idp, auth.OIDCConfig{}, clk)
	ctx := t.Context()
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "payments", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "payments", "db", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutGrant(ctx, "payments", "", "group:payments-devs", client.RoleMaintainer); err != nil {
		t.Fatal(err)
	}

	tok := deviceLogin(t, idp, "alice", alicePW)
	alice := srv.Client(t, idToken(t, tok))
	who, err := alice.Whoami(ctx)
	if err != nil {
		t.Fatalf("whoami with alice's ID token: %v", err)
	}
	if who.Name != "user:alice" || who.Kind != "oidc" || strings.Join(who.Groups, ",") != "payments-devs" {
		t.Fatalf("whoami = %+v, want user:alice (oidc) in group payments-devs only (Bad/Group is no valid group name)", who)
	}
	if _, err := alice.GetState(ctx, "payments", "db"); err != nil {
		t.Fatalf("alice reads a state of payments through group:payments-devs: %v", err)
	}
	if _, err := alice.CreateState(ctx, "payments", "cache", ""); err != nil {
		t.Fatalf("alice (maintainer through her group) creates a state: %v", err)
	}
	// What an OIDC identity mints records a stored minter: the tokens work.
	up, err := alice.CreateUploadToken(ctx, "payments", "db", time.Minute)
	if err != nil {
		t.Fatalf("alice mints an upload token: %v", err)
	}
	if _, err := srv.Client(t, up.Token).Whoami(ctx); err != nil {
		t.Fatalf("the upload token alice minted: %v", err)
	}
	if _, err := alice.GetProject(ctx, "other"); err == nil {
		t.Fatal("alice reads a project she has no grant in")
	}

	// The IdP's administrator takes alice out of the group: the next token
	// she gets by refreshing no longer carries it, and access is gone.
	idp.SetGroups(t, "alice")
	fresh, err := oauthConfig(idp).TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	alice = srv.Client(t, idToken(t, fresh))
	_, err = alice.GetState(ctx, "payments", "db")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
		t.Fatalf("alice after leaving payments-devs at the provider: %v, want 403", err)
	}

	// Token expiry: the ID token lives an hour; an hour and a minute later
	// the platform refuses it, saying so.
	clk.advance(61 * time.Minute)
	_, err = srv.Client(t, idToken(t, tok)).Whoami(ctx)
	wantUnauthorized(t, err, "expired", "log in again")
	_, err = srv.Client(t, up.Token).Whoami(ctx)
	wantUnauthorized(t, err) // upload tokens live minutes
}

func TestOIDC_WrongAudienceOrIssuer_Refused(t *testing.T) {
	idp := startIdP(t)
	other := startIdP(t)
	tok := idToken(t, deviceLogin(t, idp, "bob", "bob-password"))
	ctx := t.Context()

	t.Run("audience", func(t *testing.T) {
		srv := startOIDCPlatform(t, idp, auth.OIDCConfig{ClientID: "another-app"}, nil)
		_, err := srv.Client(t, tok).Whoami(ctx)
		wantUnauthorized(t, err, "audience "+oidcClientID, "another-app")
		_, err = srv.Client(t, "").ExchangeOIDCToken(ctx, tok, 0)
		wantUnauthorized(t, err, "audience")
		// An extra audience (a CI system's) is accepted like the client ID.
		srv = startOIDCPlatform(t, idp, auth.OIDCConfig{ClientID: "another-app", Audiences: []string{oidcClientID}}, nil)
		if _, err := srv.Client(t, tok).Whoami(ctx); err != nil {
			t.Fatalf("a token for an --oidc-audiences audience: %v", err)
		}
	})
	t.Run("issuer", func(t *testing.T) {
		srv := startOIDCPlatform(t, other, auth.OIDCConfig{}, nil)
		_, err := srv.Client(t, tok).Whoami(ctx)
		wantUnauthorized(t, err, "issued by a different provider", idp.Issuer, other.Issuer)
	})
	t.Run("no provider configured", func(t *testing.T) {
		srv := platformtest.Start(t)
		_, err := srv.Client(t, tok).Whoami(ctx)
		wantUnauthorized(t, err, "trusts no OIDC provider")
	})
	t.Run("forged", func(t *testing.T) {
		srv := startOIDCPlatform(t, idp, auth.OIDCConfig{}, nil)
		parts := strings.Split(tok, ".")
		_, err := srv.Client(t, parts[0]+"."+parts[1]+".AAAA"+parts[2][4:]).Whoami(ctx)
		wantUnauthorized(t, err, "signature")
	})
}

func TestOIDC_TokenExchange_ShortLivedPlatformToken(t *testing.T) {
	idp := startIdP(t)
	clk := &clock{}
	srv := startOIDCPlatform(t, idp, auth.OIDCConfig{}, clk)
	ctx := t.Context()
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "payments", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutGrant(ctx, "payments", "", "group:payments-devs", client.RoleViewer); err != nil {
		t.Fatal(err)
	}
	oidcTok := idToken(t, deviceLogin(t, idp, "alice", alicePW))

	ex, err := srv.Client(t, "").ExchangeOIDCToken(ctx, oidcTok, 10*time.Minute)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if ex.User != "alice" || strings.Join(ex.Groups, ",") != "payments-devs" || ex.ExpiresIn != 600 || !strings.HasPrefix(ex.AccessToken, auth.TokenPrefix) {
		t.Fatalf("exchange = %+v, want a uks_ token of alice in payments-devs for 600 s", ex)
	}
	pc := srv.Client(t, ex.AccessToken)
	if _, err := pc.GetProject(ctx, "payments"); err != nil {
		t.Fatalf("the exchanged token reads payments through the group: %v", err)
	}
	// The exchange is an access change like any token creation: audited.
	events, err := admin.ListAudit(ctx, client.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].Action != "token.create" || !strings.HasPrefix(events[0].Subject, "token:alice:oidc-") ||
		!strings.Contains(events[0].Detail, "oidc-exchange issuer=") || !strings.Contains(events[0].Detail, "groups=payments-devs") {
		t.Fatalf("newest audit event %+v, want the exchanged token of alice with its issuer and groups", events)
	}
	if _, err := srv.Client(t, "").ExchangeOIDCToken(ctx, oidcTok, 13*time.Hour); err == nil {
		t.Fatal("an exchange for longer than --oidc-exchange-ttl was granted")
	}
	if _, err := srv.Client(t, "").ExchangeOIDCToken(ctx, "uks_not-a-jwt", 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("exchanging a platform token: %v, want 401", err)
	}
	clk.advance(11 * time.Minute)
	_, err = pc.Whoami(ctx)
	wantUnauthorized(t, err)

	// Local tokens keep working beside OIDC, the admin token too.
	if _, err := srv.Client(t, srv.UserToken(t, "ci", "carol", "payments-devs")).GetProject(ctx, "payments"); err != nil {
		t.Fatalf("a local token on a platform with OIDC: %v", err)
	}
	if _, err := admin.Whoami(ctx); err != nil {
		t.Fatalf("the admin token on a platform with OIDC: %v", err)
	}
}

// A platform started while its identity provider is unreachable still
// serves local tokens and says why OIDC tokens fail.
func TestOIDC_ProviderDown_LocalTokensWork(t *testing.T) {
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = auth.OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: oidcClientID}
	}))
	ctx := context.Background()
	if _, err := srv.Admin(t).Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := srv.Client(t, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").Whoami(ctx)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status < 500 {
		t.Fatalf("an OIDC token while the provider is down: %v, want a 5xx", err)
	}
}
