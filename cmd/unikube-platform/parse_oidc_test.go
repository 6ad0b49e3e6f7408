package main

import (
	"io"
	"strings"
	"testing"
)

func TestParse_OIDCFlags(t *testing.T) {
	env := map[string]string{"UNIKUBE_OIDC_AUDIENCES": " a, ,b ", "UNIKUBE_OIDC_EXCHANGE_TTL": "2h"}
	c, err := parse("unikube-platform", []string{"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "cli", "--oidc-groups-claim", "roles"},
		func(k string) string { return env[k] }, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts.OIDC
	if o.Issuer != "https://idp.example.com" || o.ClientID != "cli" || strings.Join(o.Audiences, "|") != "a|b" ||
		o.UsernameClaim != "sub" || o.GroupsClaim != "roles" || c.opts.OIDCExchangeTTL.String() != "2h0m0s" {
		t.Errorf("parsed %+v, ttl %s", o, c.opts.OIDCExchangeTTL)
	}
	env["UNIKUBE_OIDC_EXCHANGE_TTL"] = "soon"
	if _, err := parse("unikube-platform", nil, func(k string) string { return env[k] }, io.Discard, false); err == nil || !strings.Contains(err.Error(), "UNIKUBE_OIDC_EXCHANGE_TTL") {
		t.Errorf("a bad UNIKUBE_OIDC_EXCHANGE_TTL: %v", err)
	}
}
