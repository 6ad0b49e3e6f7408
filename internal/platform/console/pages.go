package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
)

// role is the caller's role on a project (state "") or state, as the API
// decides it.
func (c *Console) role(r *http.Request, project, state string) string {
	s := sessionFrom(r.Context())
	role, err := c.cfg.Roles.CallerRole(r.Context(), "Bearer "+s.token, project, state)
	if err != nil || role == auth.RoleNone {
		return ""
	}
	return role.String()
}

func projectHref(p string) string { return "/projects/" + url.PathEscape(p) }
func stateHref(p, s string) string {
	return projectHref(p) + "/states/" + url.PathEscape(s)
}

type projectRow struct {
	client.Project
	Role string
}

func (c *Console) projectsPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	ps, err := s.api.ListProjects(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rows := make([]projectRow, len(ps))
	for i, p := range ps {
		rows[i] = projectRow{Project: p, Role: c.role(r, p.Name, "")}
	}
	c.render(w, r, http.StatusOK, "projects", "Projects", map[string]any{"Projects": rows})
}

func (c *Console) projectPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	ctx := r.Context()
	name := r.PathValue("project")
	p, err := s.api.GetProject(ctx, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	states, err := s.api.ListStates(ctx, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	scripts, err := s.api.ListScripts(ctx, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	grants, err := s.api.ListGrants(ctx, name, "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "project", p.Name, map[string]any{
		"Project": p, "Role": c.role(r, name, ""), "States": states, "Scripts": scripts,
		"Grants": grants, "GrantAction": projectHref(name) + "/grants", "Roles": allRoles,
	}, crumb{"Projects", "/"})
}

var allRoles = []string{client.RoleViewer, client.RoleApplier, client.RoleMaintainer, client.RoleOwner}

// versionsShown is how many versions the state page lists before "show
// all": a state with thousands of candidates still answers fast.
const versionsShown = 100

func (c *Console) statePage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	ctx := r.Context()
	project, name := r.PathValue("project"), r.PathValue("state")
	st, err := s.api.GetState(ctx, project, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	versions, err := s.api.ListVersions(ctx, project, name, client.ListVersionsOptions{})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	grants, err := s.api.ListGrants(ctx, project, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	total, candidates := len(versions), 0
	for _, v := range versions {
		if v.Candidate {
			candidates++
		}
	}
	all := r.URL.Query().Get("all") == "1"
	if !all && len(versions) > versionsShown {
		versions = versions[:versionsShown]
	}
	c.render(w, r, http.StatusOK, "state", project+"/"+name, map[string]any{
		"State": st, "Role": c.role(r, project, name), "Versions": versions, "Total": total, "Candidates": candidates,
		"Truncated": len(versions) < total, "Href": stateHref(project, name),
		"Grants": grants, "GrantAction": stateHref(project, name) + "/grants", "Roles": allRoles,
	}, crumb{"Projects", "/"}, crumb{project, projectHref(project)})
}

func (c *Console) versionPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, name, ref := r.PathValue("project"), r.PathValue("state"), r.PathValue("ref")
	v, err := s.api.GetVersion(r.Context(), project, name, ref)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	role := c.role(r, project, name)
	// Comparing reads both manifests, which the API gives appliers: a
	// viewer is told so instead of offered a form that would be refused.
	var others []client.Version
	if roleRank(role) >= roleRank(client.RoleApplier) {
		all, err := s.api.ListVersions(r.Context(), project, name, client.ListVersionsOptions{})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, o := range all {
			if o.Digest != v.Digest && len(others) < versionsShown {
				others = append(others, o)
			}
		}
	}
	c.render(w, r, http.StatusOK, "version", project+"/"+name+":"+v.Tag, map[string]any{
		"Version": v, "Role": role, "Href": stateHref(project, name),
		"Helm":      helmSnippet(v),
		"Terraform": terraformSnippet(v),
		"Others":    others,
	}, crumb{"Projects", "/"}, crumb{project, projectHref(project)}, crumb{name, stateHref(project, name)})
}

// diffPage compares two versions of a state from their manifests
// (statediff, as helm state diff does): ?from=REF&to=REF.
func (c *Console) diffPage(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	ctx := r.Context()
	project, name := r.PathValue("project"), r.PathValue("state")
	from, to := strings.TrimSpace(r.URL.Query().Get("from")), strings.TrimSpace(r.URL.Query().Get("to"))
	if from == "" || to == "" {
		c.renderError(w, r, http.StatusBadRequest, "Choose two versions to compare: open a version and pick the other one under \"Compare with another version\".")
		return
	}
	// The versions first, for their tags (the form sends digests), then
	// the manifests of exactly those digests.
	va, err := s.api.GetVersion(ctx, project, name, from)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	vb, err := s.api.GetVersion(ctx, project, name, to)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ma, da, err := s.api.GetManifest(ctx, project, name, va.Digest)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	mb, db, err := s.api.GetManifest(ctx, project, name, vb.Digest)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	state := project + "/" + name
	from, to = va.Tag, vb.Tag
	res, err := statediff.Diff(statediff.Side{Ref: state + ":" + from, Digest: da}, statediff.Side{Ref: state + ":" + to, Digest: db}, ma, mb)
	if err != nil {
		c.log.Error("console: diff", "state", state, "from", from, "to", to, "error", err.Error())
		c.renderError(w, r, http.StatusUnprocessableEntity, "These versions cannot be compared: a manifest holds a summary this platform cannot read (from a newer release, or damaged).")
		return
	}
	c.render(w, r, http.StatusOK, "diff", state+": "+from+" → "+to, map[string]any{
		"Diff": res, "From": from, "To": to, "Href": stateHref(project, name),
	}, crumb{"Projects", "/"}, crumb{project, projectHref(project)}, crumb{name, stateHref(project, name)})
}

// schemaLines splits a unified diff into lines classed for the page:
// added, removed, hunk header or context.
func schemaLines(diff string) []diffLine {
	var out []diffLine
	for _, l := range strings.SplitAfter(diff, "\n") {
		if l == "" {
			continue
		}
		class := "ctx"
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			class = "file"
		case strings.HasPrefix(l, "@@"):
			class = "hunk"
		case strings.HasPrefix(l, "+"):
			class = "add"
		case strings.HasPrefix(l, "-"):
			class = "del"
		}
		out = append(out, diffLine{Class: class, Text: l})
	}
	return out
}

type diffLine struct{ Class, Text string }

func helmSnippet(v client.Version) string {
	return "helm state apply " + v.Project + "/" + v.State + ":" + v.Tag + " RELEASE --namespace NAMESPACE"
}

func terraformSnippet(v client.Version) string {
	return `resource "unikube_state_apply" "` + strings.ReplaceAll(v.State, "-", "_") + `" {
  state = "` + v.Project + "/" + v.State + ":" + v.Tag + `"

  kubernetes {
    namespace = "NAMESPACE"
    release   = "RELEASE"
  }
}`
}

// versionAction promotes, retags or deletes a version, addressed by its
// digest so the action hits the version the page showed.
func (c *Console) versionAction(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	ctx := r.Context()
	project, name, ref := r.PathValue("project"), r.PathValue("state"), r.PathValue("ref")
	back := stateHref(project, name)
	var err error
	done := ""
	switch r.PathValue("action") {
	case "promote":
		done = "promoted"
		_, err = s.api.Promote(ctx, project, name, ref)
	case "retag":
		done = "retagged"
		_, err = s.api.Retag(ctx, project, name, ref, strings.TrimSpace(r.PostFormValue("tag")))
	case "delete":
		done = "deleted"
		err = s.api.DeleteVersion(ctx, project, name, ref)
	default:
		c.renderError(w, r, http.StatusNotFound, "There is no such action on a version.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, back+"?done="+done, http.StatusSeeOther)
}

func (c *Console) prune(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, name := r.PathValue("project"), r.PathValue("state")
	keep, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("keep")))
	if err != nil || keep < 0 {
		c.renderError(w, r, http.StatusBadRequest, "Keep must be a whole number of candidates, 0 or more.")
		return
	}
	if _, err := s.api.PruneCandidates(r.Context(), project, name, keep); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, stateHref(project, name)+"?done=pruned", http.StatusSeeOther)
}

// putGrant sets (or, with role "none", removes) a subject's grant on the
// project or state of the path.
func (c *Console) putGrant(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	project, state := r.PathValue("project"), r.PathValue("state")
	subject, role := strings.TrimSpace(r.PostFormValue("subject")), r.PostFormValue("role")
	back := projectHref(project)
	if state != "" {
		back = stateHref(project, state)
	}
	if subject == "" {
		c.renderError(w, r, http.StatusBadRequest, "Name whom to grant: user:NAME, group:NAME or token:USER:NAME.")
		return
	}
	var err error
	done := "granted"
	if role == "none" {
		done = "revoked"
		err = s.api.DeleteGrant(r.Context(), project, state, subject)
	} else {
		_, err = s.api.PutGrant(r.Context(), project, state, subject, role)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, back+"?done="+done+"#access", http.StatusSeeOther)
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request) {
	c.showTokens(w, r, http.StatusOK, nil, "")
}

func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, status int, created *client.CreatedToken, problem string) {
	s := sessionFrom(r.Context())
	user := ""
	if s.who.Admin {
		user = r.URL.Query().Get("user")
	}
	ts, err := s.api.ListTokens(r.Context(), user)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	live := ts[:0]
	for _, t := range ts {
		if t.RevokedAt == nil && t.Kind == "user" {
			live = append(live, t)
		}
	}
	c.render(w, r, status, "tokens", "Tokens", map[string]any{"Tokens": live, "Created": created, "Error": problem,
		"CanCreate": s.who.User != "" && !s.who.Admin, "Groups": s.who.Groups})
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	name := strings.TrimSpace(r.PostFormValue("name"))
	days, _ := strconv.Atoi(r.PostFormValue("days"))
	if days < 0 {
		days = 0
	}
	req := client.TokenRequest{Name: name, Groups: r.PostForm["groups"], TTLSeconds: int64(days) * 86400}
	created, err := s.api.CreateToken(r.Context(), req)
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized {
			c.showTokens(w, r, ae.Status, nil, sentence(ae.Message))
			return
		}
		c.fail(w, r, err)
		return
	}
	// The secret is in this answer only: it is never stored or shown again.
	c.showTokens(w, r, http.StatusCreated, &created, "")
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	name := r.PathValue("name")
	if name == s.minted {
		c.renderError(w, r, http.StatusConflict, "That is this browser's session: sign out instead.")
		return
	}
	if err := s.api.RevokeToken(r.Context(), name); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/tokens?done=tokenrevoked", http.StatusSeeOther)
}
