package console_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/console"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// Signing out of a single sign-on session must end it: the platform token
// in the browser's cookie stops working, as it does for a token sign-in.
func TestConsole_SignOutEndsASingleSignOnSession(t *testing.T) {
	ctx := t.Context()
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users:   []testenv.OIDCUser{{Name: "alice", Password: "alice-password", Groups: []string{"devs"}}},
		Clients: []testenv.OIDCClient{{ID: "unikube-cli", RedirectURIs: []string{"http://127.0.0.1/callback"}}},
	})
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = auth.OIDCConfig{Issuer: idp.Issuer, ClientID: "unikube-cli", UsernameClaim: "preferred_username"}
	}))
	conf := &oauth2.Config{ClientID: "unikube-cli", Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: idp.Issuer + "/device_authorization", TokenURL: idp.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.ApproveDevice(ctx, da.UserCode, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)

	hc := browserless(t)
	if code, body := post(t, hc, srv.URL+"/signin", url.Values{"token": {idToken}}, nil); code != http.StatusSeeOther {
		t.Fatalf("sign in with the ID token: %d: %s", code, body)
	}
	u, _ := url.Parse(srv.URL)
	var session string
	for _, c := range hc.Jar.Cookies(u) {
		if c.Name == console.SessionCookie {
			session = c.Value
		}
	}
	secret := session[strings.LastIndex(session, ":")+1:]
	if _, err := srv.Client(t, secret).Whoami(ctx); err != nil {
		t.Fatalf("the session's token: %v", err)
	}
	_, page := get(t, hc, srv.URL+"/tokens")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the tokens page:\n%s", page)
	}
	if code, body := post(t, hc, srv.URL+"/signout", url.Values{"csrf": {m[1]}}, nil); code != http.StatusSeeOther {
		t.Fatalf("sign out: %d: %s", code, body)
	}
	if _, err := srv.Client(t, secret).Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("after signing out the session's token still works (%v): a copied cookie outlives the sign-out", err)
	}
}
