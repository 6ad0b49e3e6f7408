package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// The chart bootstraps the admin with 40 random letters and digits (no
// "uks_" prefix): that token signs in to the console as it does to the API,
// and a token shaped like a JWT on a platform without single sign-on is
// told apart from a wrong platform token.
func TestConsole_SignsInWithTheChartsAdminToken(t *testing.T) {
	const chartLike = "q8ZtW3mK0pLx7RvN2cYb5HsJ9dFgA1eUoTiC4wQz"
	srv := platformtest.Start(t, platformtest.WithAdminToken(chartLike))
	hc := browserless(t)
	code, body := post(t, hc, srv.URL+"/signin", url.Values{"token": {chartLike}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in with the chart's admin token: %d: %s", code, body)
	}
	if code, body := get(t, hc, srv.URL+"/"); code != http.StatusOK || !strings.Contains(body, "admin") {
		t.Errorf("the projects page after signing in as admin: %d: %.300s", code, body)
	}
	code, body = post(t, browserless(t), srv.URL+"/signin", url.Values{"token": {"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "no single sign-on") {
		t.Errorf("a JWT on a platform without single sign-on: %d: %.300s", code, body)
	}
}
