package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/console"
)

// The platform usually serves plain HTTP behind an ingress or load balancer
// that terminates TLS and says so in X-Forwarded-Proto. The session cookie
// holds a bearer token (the admin's own, for the admin), so it must be
// Secure there too: else the browser sends it in clear text to any
// http:// URL of the host, such as the ingress's redirect to https.
func TestConsole_SessionCookieIsSecureBehindATLSProxy(t *testing.T) {
	s := startShop(t)
	for _, token := range []string{s.viewer, s.srv.AdminToken} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == console.SessionCookie {
				ck = c
			}
		}
		if ck == nil || !ck.Secure {
			t.Errorf("signed in through a TLS proxy: session cookie %+v, want Secure", ck)
		}
	}
}
