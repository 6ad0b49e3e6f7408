package console_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// screenshotDir is where UPDATE_SCREENSHOTS=1 writes the README's pictures.
const screenshotDir = "../../../manual/console"

// browser starts Debian's Chromium headless with a fresh profile and
// returns a tab; it is closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Missing(t, "chromium is not installed: `make tools` installs it (apt-get install chromium)")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first action starts the browser, for the tab's whole life.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// run runs browser actions and fails the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// text is the text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("read %s (at %s): %v", sel, loc, err)
	}
	return s
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="projects"] h1`)),
	)
	if h1 := text(t, ctx, "h1"); h1 != "Projects" {
		t.Fatalf("after signing in the page is %q, want the projects", h1)
	}
}

// screenshot writes the page at desktop width and at 360 px when
// UPDATE_SCREENSHOTS=1, so `make test` leaves the tree clean.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 800, false}, {"360", 360, 740, true}} {
		var opts []chromedp.EmulateViewportOption
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		run(t, ctx, "resize for "+name, chromedp.EmulateViewport(size.w, size.h, opts...))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		run(t, ctx, "reset the viewport", chromedp.ResetViewport())
		if err := os.WriteFile(filepath.Join(screenshotDir, name+"-"+size.suffix+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func bodyColor(t *testing.T, ctx context.Context) string {
	t.Helper()
	c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).color`))
	if err != nil {
		t.Fatalf("body colour: %v", err)
	}
	return c
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// TestConsole_InABrowser drives the console in Chromium as its users do:
// each step signs in as the user it needs.
func TestConsole_InABrowser(t *testing.T) {
	s := startShop(t)
	ctx := browser(t)
	base := s.srv.URL
	bg := context.Background()

	t.Run("a maintainer browses to a version and promotes a candidate", func(t *testing.T) {
		signIn(t, ctx, base, s.maintainer)
		if role := text(t, ctx, `tbody tr td:nth-child(2)`); role != "maintainer" {
			t.Errorf("the projects page shows role %q, want maintainer", role)
		}
		screenshot(t, ctx, "projects")
		run(t, ctx, "open the project", chromedp.Click(chromedp.CSS(`a[href="/projects/shop"]`)), chromedp.WaitVisible(chromedp.CSS(`body[data-page="project"] #access-h`)))
		screenshot(t, ctx, "project")
		run(t, ctx, "open the state", chromedp.Click(chromedp.CSS(`a[href="/projects/shop/states/seed"]`)), chromedp.WaitVisible(chromedp.CSS(`body[data-page="state"] .versions`)))
		if n := count(t, ctx, `.version .badge.cand`); n != 1 {
			t.Errorf("%d candidate badges, want 1", n)
		}
		screenshot(t, ctx, "state")
		run(t, ctx, "open the candidate",
			chromedp.Click(chromedp.CSS(`.version a.tag`)), // newest first: the candidate
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="version"] #helm-snippet`)))
		helm, tf := text(t, ctx, "#helm-snippet"), text(t, ctx, "#tf-snippet")
		if want := "helm state apply shop/seed:[cand]-2 RELEASE --namespace NAMESPACE"; helm != want {
			t.Errorf("helm snippet %q, want %q", helm, want)
		}
		if !strings.Contains(tf, `state = "shop/seed:[cand]-2"`) {
			t.Errorf("terraform snippet does not name the version:\n%s", tf)
		}
		screenshot(t, ctx, "version")
		run(t, ctx, "promote",
			chromedp.Click(chromedp.CSS(`form[action$="/promote"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="state"] .flash`)))
		if flash := text(t, ctx, ".flash"); !strings.Contains(flash, "promoted") {
			t.Errorf("flash %q", flash)
		}
		latest, err := s.srv.Admin(t).GetVersion(bg, "shop", "seed", "@latest")
		if err != nil || latest.Digest != s.candidateDigest || latest.Candidate {
			t.Fatalf("after promoting, @latest is %+v (%v), want the former candidate %s", latest, err, s.candidateDigest)
		}
	})

	t.Run("a viewer gets no promote button, and the API refuses the promotion", func(t *testing.T) {
		admin := s.srv.Admin(t)
		m, _ := manifest(t, "3", "another candidate")
		if _, err := admin.CommitVersion(bg, "shop", "seed", "[cand]-3", m); err != nil {
			t.Fatal(err)
		}
		signIn(t, ctx, base, s.viewer)
		run(t, ctx, "open the state", chromedp.Navigate(base+"/projects/shop/states/seed"), chromedp.WaitVisible(chromedp.CSS(`body[data-page="state"] .versions`)))
		if n := count(t, ctx, `.version .badge.cand`); n != 1 {
			t.Fatalf("%d candidates shown, want 1", n)
		}
		for _, sel := range []string{`form[action$="/promote"]`, `form[action$="/retag"]`, `form[action$="/delete"]`, `form[action$="/prune"]`} {
			if n := count(t, ctx, sel); n != 0 {
				t.Errorf("a viewer sees %d %s", n, sel)
			}
		}
		run(t, ctx, "open a version", chromedp.Navigate(base+"/projects/shop/states/seed/versions/v1"), chromedp.WaitVisible(chromedp.CSS(`body[data-page="version"] #helm-snippet`)))
		if n := count(t, ctx, `#compare-from`); n != 0 {
			t.Errorf("a viewer is offered to compare versions, which reads manifests (applier)")
		}
		if body := text(t, ctx, "main"); !strings.Contains(body, "Comparing versions reads their manifests, which needs the applier role") {
			t.Errorf("the viewer's version page does not say why comparing is not offered")
		}
		_, err := s.srv.Client(t, s.viewer).Promote(bg, "shop", "seed", "[cand]-3")
		if !errors.Is(err, client.ErrForbidden) {
			t.Errorf("the API let a viewer promote: %v", err)
		}
	})

	t.Run("an owner edits a grant", func(t *testing.T) {
		signIn(t, ctx, base, s.owner)
		run(t, ctx, "make vic an applier",
			chromedp.Navigate(base+"/projects/shop"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="project"] #access-h`)),
			chromedp.SetValue(chromedp.CSS(`select[id="role-user:vic"]`), "applier"),
			chromedp.Click(chromedp.CSS(`button[aria-label="Save the grant of user:vic"]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="project"] .flash`)))
		grants, err := s.srv.Admin(t).ListGrants(bg, "shop", "")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, g := range grants {
			if g.Subject == "user:vic" {
				got = g.Role
			}
		}
		if got != client.RoleApplier {
			t.Errorf("vic's grant is %q, want applier", got)
		}
	})

	t.Run("a maintainer creates and edits a script", func(t *testing.T) {
		signIn(t, ctx, base, s.maintainer)
		run(t, ctx, "write a new script",
			chromedp.Navigate(base+"/projects/shop"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="project"]`)),
			chromedp.Click(chromedp.CSS(`a[href="/projects/shop/new-script"]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="script_edit"] #body`)),
			chromedp.SendKeys(chromedp.CSS(`#name`), "reset-carts"),
			chromedp.SendKeys(chromedp.CSS(`#description`), "Empties the carts"),
			chromedp.SetValue(chromedp.CSS(`#interpreter`), "bash"),
			chromedp.SendKeys(chromedp.CSS(`#body`), `psql "$DATABASE_URL" -c 'DELETE FROM carts'`),
			chromedp.SendKeys(chromedp.CSS(`input[name="var_name"]`), "DATABASE_URL"),
			chromedp.Click(chromedp.CSS(`input[name="var_required_0"]`)),
			chromedp.Click(chromedp.CSS(`input[name="var_sensitive_0"]`)),
		)
		screenshot(t, ctx, "script-edit")
		run(t, ctx, "save it",
			chromedp.Click(chromedp.CSS(`form button.primary`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="script"] .flash`)))
		api := s.srv.Client(t, s.maintainer)
		sc, err := api.GetScript(bg, "shop", "reset-carts")
		if err != nil {
			t.Fatalf("the script was not created: %v", err)
		}
		if sc.Interpreter != "bash" || sc.Description != "Empties the carts" || len(sc.Variables) != 1 || !sc.Variables[0].Required || !sc.Variables[0].Sensitive {
			t.Errorf("created script %+v", sc)
		}
		run(t, ctx, "edit it",
			chromedp.Click(chromedp.CSS(`a[href="/projects/shop/scripts/reset-carts/edit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="script_edit"] #description`)),
			chromedp.SetValue(chromedp.CSS(`#description`), "Empties every cart"),
			chromedp.Click(chromedp.CSS(`form button.primary`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="script"] .flash`)))
		if sc, err = api.GetScript(bg, "shop", "reset-carts"); err != nil || sc.Description != "Empties every cart" || len(sc.Variables) != 1 {
			t.Errorf("after the edit the script is %+v (%v)", sc, err)
		}
	})

	t.Run("a failed run's stack trace is shown", func(t *testing.T) {
		run(t, ctx, "open the script",
			chromedp.Navigate(base+"/projects/shop/scripts/"+s.script),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="script"] pre.code`)))
		if kw := text(t, ctx, `pre.code .kn`); kw != "import" {
			t.Errorf("the python source's first keyword marked is %q, want import highlighted", kw)
		}
		if color, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("pre.code .kn")).color`)); err != nil || color == bodyColor(t, ctx) {
			t.Errorf("the keyword has the text's colour %q (%v): highlight.css did not apply", color, err)
		}
		screenshot(t, ctx, "script")
		run(t, ctx, "open the failed run",
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href$="/runs/%s"]`, s.failedRun))),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="run"] pre.trace`)))
		if trace := text(t, ctx, "pre.trace"); !strings.Contains(trace, "KeyError: 'price'") {
			t.Errorf("stack trace shown: %q", trace)
		}
		screenshot(t, ctx, "run")
	})

	t.Run("a maintainer compares a version with another and sees the changed table", func(t *testing.T) {
		admin := s.srv.Admin(t)
		schema := "CREATE TABLE public.products (\n    id integer,\n    price numeric\n);\n"
		push := func(tag, content, schema string, rows int64) {
			m, mem := summarised(t, content, statepkg.Summary{Schema: schema, SchemaDigest: statepkg.DigestBytes([]byte(schema)), Tables: []statepkg.TableSummary{
				{Name: "public.products", Rows: rows, Bytes: rows * 40, Digest: statepkg.DigestBytes([]byte(content))},
				{Name: "public.orders", Rows: 3, Bytes: 90, Digest: statepkg.DigestBytes([]byte("orders"))},
			}})
			if _, _, err := admin.PushVersion(bg, "shop", "seed", tag, m, mem, client.TransferOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		push("before-sale", "INSERT INTO products VALUES (1, 'mug', 1200);\n", schema, 12)
		push("sale", "INSERT INTO products VALUES (1, 'mug', 600);\n", strings.Replace(schema, "price numeric", "price numeric,\n    currency text", 1), 13)
		run(t, ctx, "open the version and compare it with the one before",
			chromedp.Navigate(base+"/projects/shop/states/seed/versions/sale"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="version"] #compare-from`)),
			chromedp.SetValue(chromedp.CSS(`#compare-from`), must(admin.GetVersion(bg, "shop", "seed", "before-sale")).Digest),
			chromedp.Click(chromedp.CSS(`form.compare button`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="diff"] table.diff-tables`)))
		if row := text(t, ctx, `table.diff-tables tbody tr`); !strings.Contains(row, "public.products") || !strings.Contains(row, "12 → 13") {
			t.Errorf("the changed table's row is %q, want public.products with 12 → 13 rows", row)
		}
		if n := count(t, ctx, `table.diff-tables tbody tr`); n != 1 {
			t.Errorf("%d tables listed, want only the changed one", n)
		}
		if added := text(t, ctx, `pre.diff .dl-add`); !strings.Contains(added, "price numeric,") {
			t.Errorf("first added schema line %q", added)
		}
		if n := count(t, ctx, `pre.diff .dl-del`); n != 1 {
			t.Errorf("%d removed schema lines marked, want 1", n)
		}
		screenshot(t, ctx, "diff")
	})

	t.Run("a page of another origin cannot change anything", func(t *testing.T) {
		// Same site (127.0.0.1), another port: the session cookie goes
		// along, so only the console's origin check stands in the way.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target := base + "/projects/shop/states/seed/versions/[cand]-3/promote"
		evil := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, target)
		})}
		go func() { _ = evil.Serve(ln) }()
		t.Cleanup(func() { _ = evil.Close() })
		run(t, ctx, "visit the other site",
			chromedp.Navigate("http://"+ln.Addr().String()+"/"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="error"] p.error`)))
		if msg := text(t, ctx, "p.error"); !strings.Contains(msg, "another web site") {
			t.Errorf("the console answered the forged form with %q", msg)
		}
		v, err := s.srv.Admin(t).GetVersion(bg, "shop", "seed", "[cand]-3")
		if err != nil || !v.Candidate {
			t.Errorf("the forged promotion went through: %+v %v", v, err)
		}
	})

	t.Run("the tokens page and signing out", func(t *testing.T) {
		run(t, ctx, "tokens", chromedp.Navigate(base+"/tokens"), chromedp.WaitVisible(chromedp.CSS(`body[data-page="tokens"] #tname`)))
		screenshot(t, ctx, "tokens")
		run(t, ctx, "sign out",
			chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="signin"] #token`)),
			chromedp.Navigate(base+"/projects/shop"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-page="signin"] #token`)))
		screenshot(t, ctx, "signin")
		ts, err := s.srv.Admin(t).ListTokens(bg, "mia")
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			if strings.HasPrefix(tk.Name, "console-session-") && tk.RevokedAt == nil {
				t.Errorf("session token %s is still live after signing out", tk.Name)
			}
		}
	})
}
