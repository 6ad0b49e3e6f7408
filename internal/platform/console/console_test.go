package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/console"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// browserless is an HTTP client with a cookie jar that does not follow
// redirects, to see each answer.
func browserless(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t testing.TB, hc *http.Client, u string, form url.Values, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t testing.TB, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signInHTTP(t testing.TB, hc *http.Client, base, token string) {
	t.Helper()
	if code, body := post(t, hc, base+"/signin", url.Values{"token": {token}}, nil); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d: %s", code, body)
	}
}

func TestConsole_ChangesNeedTheFormTokenAndTheConsolesOrigin(t *testing.T) {
	s := startShop(t)
	hc := browserless(t)
	signInHTTP(t, hc, s.srv.URL, s.maintainer)
	_, page := get(t, hc, s.srv.URL+"/projects/shop/states/seed")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the state page has no form token:\n%s", page)
	}
	promote := s.srv.URL + "/projects/shop/states/seed/versions/" + url.PathEscape(s.candidateDigest) + "/promote"
	stillCandidate := func(when string) {
		t.Helper()
		v, err := s.srv.Admin(t).GetVersion(context.Background(), "shop", "seed", s.candidateDigest)
		if err != nil || !v.Candidate {
			t.Fatalf("%s: the candidate was promoted (%+v, %v)", when, v, err)
		}
	}
	if code, _ := post(t, hc, promote, url.Values{}, nil); code != http.StatusForbidden {
		t.Errorf("a POST without the form token: %d, want 403", code)
	}
	stillCandidate("without the form token")
	if code, _ := post(t, hc, promote, url.Values{"csrf": {"forged"}}, nil); code != http.StatusForbidden {
		t.Errorf("a POST with a wrong form token: %d, want 403", code)
	}
	stillCandidate("with a wrong form token")
	if code, _ := post(t, hc, promote, url.Values{"csrf": {m[1]}}, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("a POST from another origin with the right token: %d, want 403", code)
	}
	stillCandidate("from another origin")
	if code, body := post(t, hc, promote, url.Values{"csrf": {m[1]}}, map[string]string{"Origin": s.srv.URL, "Sec-Fetch-Site": "same-origin"}); code != http.StatusSeeOther {
		t.Fatalf("the console's own form: %d: %s", code, body)
	}
	v, err := s.srv.Admin(t).GetVersion(context.Background(), "shop", "seed", "@latest")
	if err != nil || v.Digest != s.candidateDigest {
		t.Errorf("the console's own form did not promote: %+v %v", v, err)
	}
}

func TestConsole_SessionCookieAndSignIn(t *testing.T) {
	s := startShop(t)
	hc := browserless(t)
	code, body := post(t, hc, s.srv.URL+"/signin", url.Values{"token": {"uks_not-a-token"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "not accepted") {
		t.Errorf("a wrong token: %d: %s", code, body)
	}
	if code, _ := get(t, hc, s.srv.URL+"/projects/shop"); code != http.StatusSeeOther {
		t.Errorf("a page without a session: %d, want a redirect to sign in", code)
	}
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/signin", strings.NewReader(url.Values{"token": {s.viewer}, "next": {"//evil.example/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("after signing in the console sends the browser to %q, want / (never another site)", loc)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.SessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict (Secure only over TLS)", ck)
	}
	if strings.Contains(ck.Value, s.viewer) {
		t.Errorf("the cookie holds the token signed in with; it must hold a session token")
	}
	// The API itself is untouched: it still answers JSON.
	if code, body := get(t, hc, s.srv.URL+"/api/v1/nothing-here"); code != http.StatusNotFound || !strings.Contains(body, "no route") {
		t.Errorf("an unknown API path: %d %s", code, body)
	}
}

// The console suggests the images the script runner really defaults to.
func TestConsole_DefaultImagesAreTheRunners(t *testing.T) {
	if fmt.Sprint(console.DefaultImages) != fmt.Sprint(scriptrun.DefaultImages) {
		t.Errorf("console.DefaultImages %v differ from scriptrun.DefaultImages %v", console.DefaultImages, scriptrun.DefaultImages)
	}
}

// BenchmarkConsole_Pages measures the server time of each page (the
// platform's handler, in process: rendering plus the API calls behind it)
// for a state with 1,000 versions, half of them candidates.
func BenchmarkConsole_Pages(b *testing.B) {
	s := startShop(b)
	ctx := context.Background()
	admin := s.srv.Admin(b)
	m, _ := manifest(b, "0", "")
	for i := range 998 {
		v := *m
		v.Revision, v.Message = fmt.Sprint(i+3), fmt.Sprintf("nightly capture %d", i)
		tag := fmt.Sprintf("n%d", i)
		if i%2 == 0 {
			tag = statepkg.CandidatePrefix + tag
		}
		if _, err := admin.CommitVersion(ctx, "shop", "seed", tag, &v); err != nil {
			b.Fatal(err)
		}
	}
	hc := browserless(b)
	signInHTTP(b, hc, s.srv.URL, s.maintainer)
	u, _ := url.Parse(s.srv.URL)
	cookies := hc.Jar.Cookies(u)
	h := s.srv.Platform.Handler()
	for _, page := range []struct{ name, path string }{
		{"projects", "/"},
		{"project", "/projects/shop"},
		{"state", "/projects/shop/states/seed"},
		{"state-all-1000", "/projects/shop/states/seed?all=1"},
		{"version", "/projects/shop/states/seed/versions/v1"},
		{"diff", "/projects/shop/states/seed/diff?from=v1&to=n997"},
		{"script", "/projects/shop/scripts/" + s.script},
	} {
		b.Run(page.name, func(b *testing.B) {
			var size int
			cpu0 := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, page.path, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d: %s", page.path, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
			// The CPU time per page, the figure a shared machine's load
			// does not inflate (the wall time per page is ns/op).
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/page")
		})
	}
}

// cpuTime is the CPU time this process (the platform and the benchmark)
// has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestConsole_TokensCreateShowsTheSecretOnceAndRevoke(t *testing.T) {
	s := startShop(t)
	hc := browserless(t)
	signInHTTP(t, hc, s.srv.URL, s.maintainer)
	_, page := get(t, hc, s.srv.URL+"/tokens")
	csrf := csrfField.FindStringSubmatch(page)[1]
	code, body := post(t, hc, s.srv.URL+"/tokens", url.Values{"csrf": {csrf}, "name": {"ci-deploy"}, "days": {"7"}}, nil)
	secret := regexp.MustCompile(`<pre id="new-secret"><code>(uks_[^<]+)</code>`).FindStringSubmatch(body)
	if code != http.StatusCreated || secret == nil {
		t.Fatalf("create: %d, no secret shown:\n%s", code, body)
	}
	who, err := s.srv.Client(t, secret[1]).Whoami(context.Background())
	if err != nil || who.User != "mia" {
		t.Fatalf("the shown secret does not work as mia's token: %+v %v", who, err)
	}
	if _, again := get(t, hc, s.srv.URL+"/tokens"); strings.Contains(again, secret[1]) || !strings.Contains(again, "ci-deploy") {
		t.Errorf("the tokens page must list ci-deploy without its secret")
	}
	if code, body := post(t, hc, s.srv.URL+"/tokens", url.Values{"csrf": {csrf}, "name": {"ci-deploy"}}, nil); code != http.StatusConflict || !strings.Contains(body, "already has a token named") {
		t.Errorf("a second token of the same name: %d, want the API's 409 in words", code)
	}
	if code, _ := post(t, hc, s.srv.URL+"/tokens/ci-deploy/revoke", url.Values{"csrf": {csrf}}, nil); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := s.srv.Client(t, secret[1]).Whoami(context.Background()); err == nil {
		t.Errorf("the revoked token still works")
	}
}
