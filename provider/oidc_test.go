package provider

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	acc "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"golang.org/x/oauth2"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestAccProvider_OIDCTokenExchange: CI's workload identity shape. The
// provider is given an OIDC token of a real provider (test/oidcprovider)
// in a file, exchanges it for a short-lived platform token and reads
// through the token's group grant; a token for another audience fails
// with a message that says so.
func TestAccProvider_OIDCTokenExchange(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc) to run it against a real platform and terraform CLI")
	}
	t.Setenv("CHECKPOINT_DISABLE", "1")
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users:   []testenv.OIDCUser{{Name: "ci-bot", Password: "ci-pw", Groups: []string{"shop-readers"}}},
		Clients: []testenv.OIDCClient{{ID: "unikube-ci"}},
	})
	start := func(audience string) *platformtest.Server {
		return platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
			o.OIDC = auth.OIDCConfig{Issuer: idp.Issuer, ClientID: audience, UsernameClaim: "preferred_username"}
		}))
	}
	srv := start("unikube-ci")
	ctx := context.Background()
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, testProject, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, testProject, "seed", "seeded by CI"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutGrant(ctx, testProject, "", "group:shop-readers", client.RoleViewer); err != nil {
		t.Fatal(err)
	}

	conf := &oauth2.Config{ClientID: "unikube-ci", Scopes: []string{"openid", "profile"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: idp.Issuer + "/device_authorization", TokenURL: idp.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.ApproveDevice(ctx, da.UserCode, "ci-bot", "ci-pw"); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	tokenFile := filepath.Join(t.TempDir(), "oidc-token")
	if err := os.WriteFile(tokenFile, []byte(idToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envToken, "")
	t.Setenv(client.EnvOIDCToken, "")
	t.Setenv(client.EnvOIDCTokenFile, "")
	config := `provider "unikube" {
  oidc_token_file = "` + tokenFile + `"
}

data "unikube_named_state" "seed" {
  project = "shop"
  name    = "seed"
}
`
	t.Run("exchanged", func(t *testing.T) {
		t.Setenv(envEndpoint, srv.URL)
		acc.Test(t, acc.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []acc.TestStep{{
				Config: config,
				Check:  acc.TestCheckResourceAttr("data.unikube_named_state.seed", "description", "seeded by CI"),
			}},
		})
	})
	t.Run("wrong audience", func(t *testing.T) {
		t.Setenv(envEndpoint, start("another-platform").URL)
		acc.Test(t, acc.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []acc.TestStep{{
				Config:      config,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)OIDC token not exchanged.*audience`),
			}},
		})
	})
}
