package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestBinary_OIDCFromTheEnvironment: the binary, configured for single
// sign-on through its environment (as the chart does), names its provider
// to clients and tells a token of a provider it does not trust apart.
func TestBinary_OIDCFromTheEnvironment(t *testing.T) {
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{Clients: []testenv.OIDCClient{{ID: "helm-state"}}})
	dir := t.TempDir()
	addr := freePort(t)
	start(t, dir, addr, []string{"UNIKUBE_ADMIN_TOKEN=" + adminToken, "UNIKUBE_LISTEN=" + addr, "UNIKUBE_DATA_DIR=" + filepath.Join(dir, "data"),
		"UNIKUBE_OIDC_ISSUER=" + idp.Issuer, "UNIKUBE_OIDC_CLIENT_ID=helm-state", "UNIKUBE_OIDC_AUDIENCES=unikube-ci, sts.example.com",
		"UNIKUBE_OIDC_USERNAME_CLAIM=preferred_username", "UNIKUBE_OIDC_EXCHANGE_TTL=30m"})
	c := newClient(t, addr)
	set, err := c.OIDCSettings(context.Background())
	if err != nil || set.Issuer != idp.Issuer || set.ClientID != "helm-state" {
		t.Fatalf("GET /api/v1/oidc = %+v, %v", set, err)
	}
	// A token claiming another issuer is refused, naming both.
	foreign := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZS5jb20iLCJzdWIiOiJ4In0.c2ln"
	_, err = c.WithToken(foreign).Whoami(context.Background())
	if err == nil || !strings.Contains(err.Error(), "https://evil.example.com") || !strings.Contains(err.Error(), idp.Issuer) {
		t.Errorf("a foreign issuer's token: %v", err)
	}
}
