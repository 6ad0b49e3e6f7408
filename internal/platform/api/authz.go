package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// need checks the caller holds at least min on the project (state "") or the
// state, and returns the caller.
func (s *Server) need(r *http.Request, project, state string, want auth.Role) (auth.Principal, error) {
	p := principalFrom(r.Context())
	if p.IsJob() {
		return p, errf(http.StatusForbidden, "forbidden: a job token may only download the version it was issued for")
	}
	if p.IsUpload() {
		return p, errf(http.StatusForbidden, "forbidden: an upload token may only upload chunks to and commit versions of %s/%s", p.Token.Project, p.Token.State)
	}
	role, err := s.authn.RoleOn(r.Context(), p, project, state)
	if err != nil {
		return p, err
	}
	if role < want {
		scope := "project " + project
		if state != "" {
			scope = "state " + project + "/" + state
		}
		return p, errf(http.StatusForbidden, "forbidden: this needs role %s on %s; %s has %s: ask an owner for a grant", want, scope, p.Name(), role)
	}
	return p, nil
}

// needUploader checks the caller may upload chunks to and commit versions
// of the state: a maintainer, or an upload token issued for this state.
func (s *Server) needUploader(r *http.Request, project, state string) (auth.Principal, error) {
	p := principalFrom(r.Context())
	if p.IsUpload() && p.Token.Project == project && p.Token.State == state {
		return p, nil
	}
	return s.need(r, project, state, auth.RoleMaintainer)
}

// needAdmin checks the caller is the admin.
func needAdmin(r *http.Request) error {
	if !principalFrom(r.Context()).IsAdmin() {
		return errf(http.StatusForbidden, "forbidden: only the admin token may do this")
	}
	return nil
}

// jobScope checks a job token is used on its own state; it reports whether
// the caller is a job token.
func jobScope(p auth.Principal, project, state string) (bool, error) {
	if !p.IsJob() {
		return false, nil
	}
	if p.Token.Project != project || p.Token.State != state {
		return true, errf(http.StatusForbidden, "forbidden: this job token is scoped to %s/%s", p.Token.Project, p.Token.State)
	}
	return true, nil
}

// names reads and validates the {project} and optional {state} path values:
// lowercase DNS labels, so a name can never be a path traversal.
func names(r *http.Request) (project, state string, err error) {
	project = r.PathValue("project")
	if err := statepkg.ValidateName(project); err != nil {
		return "", "", errf(http.StatusBadRequest, "project: %v", err)
	}
	if state = r.PathValue("state"); state != "" || strings.Contains(r.Pattern, "{state}") {
		if err := statepkg.ValidateName(state); err != nil {
			return "", "", errf(http.StatusBadRequest, "state: %v", err)
		}
	}
	return project, state, nil
}

// resolve finds the version a read tag expression (or digest) selects.
func (s *Server) resolve(ctx context.Context, project, state, ref string) (store.Version, error) {
	expr, err := statepkg.ParseTagExpr(ref)
	if err != nil {
		return store.Version{}, errf(http.StatusBadRequest, "version reference: %v", err)
	}
	switch expr.Kind {
	case statepkg.TagLatest:
		return s.st.NewestVersion(ctx, project, state, false)
	case statepkg.TagCandidate:
		return s.st.NewestVersion(ctx, project, state, true)
	case statepkg.TagLiteral:
		return s.st.GetVersion(ctx, project, state, expr.Literal)
	case statepkg.TagDigest:
		return s.st.GetVersionByDigest(ctx, project, state, expr.Literal)
	default:
		return store.Version{}, errf(http.StatusBadRequest, "%s names a new version; it can only be used when creating one", expr)
	}
}

// stateExists returns 404 for a missing state (checked after access so
// callers without access cannot probe names).
func (s *Server) stateExists(ctx context.Context, project, state string) error {
	_, err := s.st.GetState(ctx, project, state)
	return err
}

// CallerRole is the role the bearer of authorization (an Authorization
// header value) holds on the project (state "") or state, decided by the
// same authenticator and rules as every API route: the console shows only
// the actions this allows, and each action is still an API call that checks
// again.
func (s *Server) CallerRole(ctx context.Context, authorization, project, state string) (auth.Role, error) {
	p, err := s.authn.Authenticate(ctx, authorization)
	if err != nil {
		return auth.RoleNone, err
	}
	return s.authn.RoleOn(ctx, p, project, state)
}
