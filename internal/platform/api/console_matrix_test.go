package api_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// The console's rows of the access matrix: every page and action of the
// web console (internal/platform/console), used through a browser session
// by every kind of caller, must let through exactly whom the API's rule
// for the same operation lets through. The console signs in with the
// principal's token and calls the API with it; these rows check that no
// page shows, and no action does, more than the caller's role allows.
type consoleRow struct {
	name   string
	method string
	row    row // min, state and also as for the API operation behind it
	// req returns the path and, for a POST, the form (the form token is
	// added unless noToken).
	req     func(w *world) (string, url.Values)
	noToken bool
}

func consoleRows() []consoleRow {
	p, s := "/projects/mx", "/projects/mx/states/"+targetState
	fixed := func(path string) func(*world) (string, url.Values) {
		return func(*world) (string, url.Values) { return path, nil }
	}
	return []consoleRow{
		{name: "projects page", method: "GET", row: row{min: lvToken, also: jobAndUploader}, req: fixed("/")},
		{name: "project page", method: "GET", row: row{min: lvViewer}, req: fixed(p)},
		{name: "state page", method: "GET", row: row{min: lvViewer, state: true}, req: fixed(s)},
		{name: "version page", method: "GET", row: row{min: lvViewer, state: true, also: jobToken}, req: fixed(s + "/versions/v1")},
		{name: "version page of another version", method: "GET", row: row{min: lvViewer, state: true}, req: fixed(s + "/versions/v2")},
		// Comparing reads both manifests: applier, as the API's getManifest.
		{name: "compare two versions", method: "GET", row: row{min: lvApplier, state: true}, req: fixed(s + "/diff?from=v1&to=v2")},
		{name: "promote", method: "POST", row: row{min: lvMaintainer, state: true}, req: func(w *world) (string, url.Values) {
			return s + "/versions/" + url.PathEscape(w.freshVersion(targetState, "[cand]-"+w.uniq("cpr"))) + "/promote", url.Values{}
		}},
		{name: "promote without the form token", method: "POST", row: row{min: lvNobody, state: true}, noToken: true, req: func(w *world) (string, url.Values) {
			return s + "/versions/" + url.PathEscape(w.freshVersion(targetState, "[cand]-"+w.uniq("cpx"))) + "/promote", url.Values{}
		}},
		{name: "retag", method: "POST", row: row{min: lvMaintainer, state: true}, req: func(w *world) (string, url.Values) {
			return s + "/versions/" + w.freshVersion(targetState, w.uniq("crt")) + "/retag", url.Values{"tag": {w.uniq("crt")}}
		}},
		{name: "delete version", method: "POST", row: row{min: lvOwner, state: true}, req: func(w *world) (string, url.Values) {
			return s + "/versions/" + w.freshVersion(targetState, w.uniq("cdv")) + "/delete", url.Values{}
		}},
		{name: "prune candidates", method: "POST", row: row{min: lvMaintainer, state: true}, req: func(*world) (string, url.Values) {
			return s + "/prune", url.Values{"keep": {"1000"}}
		}},
		{name: "project grant", method: "POST", row: row{min: lvOwner}, req: func(w *world) (string, url.Values) {
			return p + "/grants", url.Values{"subject": {"user:" + w.uniq("cg")}, "role": {client.RoleViewer}}
		}},
		{name: "state grant", method: "POST", row: row{min: lvOwner, state: true}, req: func(w *world) (string, url.Values) {
			return s + "/grants", url.Values{"subject": {"user:" + w.uniq("cg")}, "role": {client.RoleViewer}}
		}},
		{name: "remove project grant", method: "POST", row: row{min: lvOwner}, req: func(w *world) (string, url.Values) {
			return p + "/grants", url.Values{"subject": {w.freshGrant(w.project, "")}, "role": {"none"}}
		}},
		{name: "script page", method: "GET", row: row{min: lvViewer}, req: fixed(p + "/scripts/sc")},
		{name: "run page", method: "GET", row: row{min: lvViewer}, req: func(w *world) (string, url.Values) { return p + "/scripts/sc/runs/" + w.run, nil }},
		{name: "create script", method: "POST", row: row{min: lvMaintainer}, req: func(w *world) (string, url.Values) {
			return p + "/scripts", url.Values{"new": {"1"}, "name": {w.uniq("csc")}, "interpreter": {"sh"}, "body": {"true"}}
		}},
		{name: "tokens page", method: "GET", row: row{min: lvToken}, req: fixed("/tokens")},
	}
}

var consoleFormToken = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleSession is a principal signed in to the console (or not: a
// refused sign-in leaves no session, as for a browser).
type consoleSession struct {
	hc   *http.Client
	csrf string
}

func (w *world) consoleSignIn(t *testing.T, p *principal) *consoleSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cs := &consoleSession{hc: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(cs.hc.CloseIdleConnections)
	if p.token == "" {
		return cs
	}
	code, _, _ := cs.do(t, w.srv.URL, "POST", "/signin", url.Values{"token": {p.token}})
	if code != http.StatusSeeOther {
		return cs
	}
	if _, body, _ := cs.do(t, w.srv.URL, "GET", "/", nil); consoleFormToken.MatchString(body) {
		cs.csrf = consoleFormToken.FindStringSubmatch(body)[1]
	}
	return cs
}

func (cs *consoleSession) do(t *testing.T, base, method, path string, form url.Values) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := cs.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// consoleMatrix runs the console's rows for every principal of w.
func consoleMatrix(t *testing.T, w *world) {
	// The platform trusts an identity provider: the sign-in page offers it.
	if _, body, _ := w.consoleSignIn(t, &principal{name: "anonymous"}).do(t, w.srv.URL, "GET", "/signin", nil); !strings.Contains(body, "Sign in with SSO") {
		t.Errorf("the sign-in page of a platform with single sign-on does not offer it")
	}
	sessions := map[string]*consoleSession{}
	for _, p := range w.principals {
		sessions[p.name] = w.consoleSignIn(t, p)
	}
	for _, cr := range consoleRows() {
		t.Run("console/"+cr.name, func(t *testing.T) {
			for _, p := range w.principals {
				cs := sessions[p.name]
				path, form := cr.req(w)
				if form != nil && !cr.noToken {
					form.Set("csrf", cs.csrf)
				}
				code, body, loc := cs.do(t, w.srv.URL, cr.method, path, form)
				through := (cr.method == "GET" && code == http.StatusOK) ||
					(cr.method == "POST" && code == http.StatusSeeOther && !strings.HasPrefix(loc, "/signin"))
				refused := code == http.StatusForbidden || code == http.StatusNotFound || code == http.StatusUnauthorized ||
					(code == http.StatusSeeOther && strings.HasPrefix(loc, "/signin"))
				want := allowed(cr.row, p)
				what := cr.method + " " + path + " (" + cr.name + ") as " + p.name
				switch {
				case want && !through:
					t.Errorf("%s: got %d %s, want it through (needs %s): %s", what, code, loc, cr.row.min, snippet([]byte(body)))
				case !want && !refused:
					t.Errorf("%s: got %d %s, want it refused (needs %s): %s", what, code, loc, cr.row.min, snippet([]byte(body)))
				}
			}
		})
	}
}
