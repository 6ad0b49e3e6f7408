package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A link to the sign-in page can name where to go afterwards; a browser
// strips tabs and newlines from a URL, so "/<TAB>/host" is "//host" to it:
// another site. Signing in must never send the browser there.
func TestConsole_SignInNeverRedirectsToAnotherSite(t *testing.T) {
	s := startShop(t)
	const evilHost = "evil.example"

	var locations []string
	for _, next := range []string{"/\t/" + evilHost + "/", "/\n/" + evilHost + "/", "/\r/" + evilHost + "/", "/\t\\" + evilHost + "/"} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/signin", strings.NewReader(url.Values{"token": {s.viewer}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(req) // the raw answer: Go's client refuses such a Location

		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		locations = append(locations, loc)
		if loc != "/" {
			t.Errorf("next=%q: after signing in the console sends the browser to %q, want /", next, loc)
		}
	}

	// What Chromium makes of such a Location, without leaving the page.
	ctx := browser(t)
	run(t, ctx, "open the sign-in page", chromedp.Navigate(s.srv.URL+"/signin"), chromedp.WaitVisible(chromedp.CSS(`#token`)))
	for _, loc := range locations {
		host, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`new URL(%q, location.href).host`, loc)))
		if err != nil {
			t.Fatal(err)
		}
		if host != strings.TrimPrefix(s.srv.URL, "http://") {
			t.Errorf("the browser follows Location %q to host %s, not the console", loc, host)
		}
	}
}
