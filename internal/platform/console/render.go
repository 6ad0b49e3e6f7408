package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "error", "projects", "project", "state", "version", "diff", "tokens", "script", "script_edit", "run"}

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"when":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"whenp":    whenPtr,
	"duration": runDuration,
	"short":    shortDigest,
	"roleAtLeast": func(have, want string) bool {
		return roleRank(have) >= roleRank(want)
	},
	"join":        strings.Join,
	"schemaLines": schemaLines,
	"bytesChange": func(c statediff.Change, before, after int64) string {
		return sizeChange(c, before, after, humanBytes)
	},
	"countChange": func(c statediff.Change, before, after int64) string {
		return sizeChange(c, before, after, humanize.Comma)
	},
}

// sizeChange shows a before and after, or the one side an added or
// removed item has.
func sizeChange(c statediff.Change, before, after int64, f func(int64) string) string {
	switch c {
	case statediff.Added:
		return f(after)
	case statediff.Removed:
		return f(before)
	}
	return f(before) + " → " + f(after)
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/access.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what every page's template gets.
type view struct {
	Page  string // the template's name, for tests and styles
	Title string
	Who   *client.Whoami
	CSRF  string
	Flash string
	Data  any
	// Crumbs lead back up: project, state.
	Crumbs []crumb
}

type crumb struct{ Label, Href string }

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any, crumbs ...crumb) {
	v := view{Page: page, Title: title, Data: data, Crumbs: crumbs, Flash: flashText(r.URL.Query().Get("done"))}
	if s := sessionFrom(r.Context()); s != nil {
		v.Who, v.CSRF = &s.who, s.csrf
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, v); err != nil {
		c.log.Error("console: render page", "page", page, "error", err.Error())
		http.Error(w, "The page could not be shown: see the server log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", http.StatusText(status), map[string]any{"Message": msg, "Status": status})
}

// fail shows an API error in words: the API's own message says what was
// refused and what to do.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *client.Error
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		clearSession(w, r)
		c.toSignin(w, r)
	case errors.As(err, &ae) && ae.Status < 500:
		c.renderError(w, r, ae.Status, sentence(ae.Message))
	default:
		c.log.Error("console: request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
		c.renderError(w, r, http.StatusInternalServerError, "Something went wrong on the platform; nothing more is known here. The server log has the details.")
	}
}

// apiMessage is an error's text without the method and path.
func apiMessage(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return sentence(ae.Message)
	}
	return err.Error()
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

var flashes = map[string]string{
	"promoted":     "The candidate was promoted: it is now @latest.",
	"retagged":     "The version was retagged.",
	"deleted":      "The version was deleted; its chunks go at the next garbage collection.",
	"pruned":       "Candidates were pruned.",
	"granted":      "The grant was saved.",
	"revoked":      "The grant was removed.",
	"saved":        "The script was saved.",
	"tokenrevoked": "The token was revoked; it and the tokens it created stop working now.",
}

func flashText(code string) string { return flashes[code] }

func roleRank(r string) int {
	switch r {
	case client.RoleViewer:
		return 1
	case client.RoleApplier:
		return 2
	case client.RoleMaintainer:
		return 3
	case client.RoleOwner:
		return 4
	}
	return 0
}

// humanBytes is a size in binary units, as the Helm plugin prints them.
func humanBytes(n int64) string {
	if n < 0 {
		n = 0
	}
	return humanize.IBytes(uint64(n))
}

func whenPtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func runDuration(r client.Run) string {
	if r.StartedAt == nil {
		return "—"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt).Round(100 * time.Millisecond).String()
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
