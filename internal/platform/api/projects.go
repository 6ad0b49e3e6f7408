package api

import (
	"net/http"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	subs := p.Subjects()
	if subs == nil {
		subs = []string{}
	}
	writeJSON(w, http.StatusOK, apitypes.Whoami{Name: p.Name(), Kind: p.Token.Kind, User: p.Token.User, Groups: p.Token.Groups, Admin: p.IsAdmin(), Subjects: subs})
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	all, err := s.st.ListProjects(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.IsAdmin() {
		writeJSON(w, http.StatusOK, all)
		return
	}
	visible, err := s.st.ProjectsVisibleTo(r.Context(), p.Subjects(), p.Token.User)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []store.Project{}
	for _, pr := range all {
		if visible[pr.Name] {
			out = append(out, pr)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.IsScoped() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a %s token cannot create projects", p.Token.Kind))
		return
	}
	if !p.IsAdmin() && p.Token.User == "" {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a token without a user cannot own a project; create a token for a user"))
		return
	}
	var req apitypes.NameDescription
	if err := s.decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := statepkg.ValidateName(req.Name); err != nil {
		s.fail(w, r, errf(http.StatusBadRequest, "project name: %v", err))
		return
	}
	pr := store.Project{Name: req.Name, Description: req.Description, CreatedAt: s.cfg.Now(), CreatedBy: p.Name()}
	// The creator owns the project; the admin needs no grant.
	owner := ""
	if !p.IsAdmin() {
		owner = "user:" + p.Token.User
	}
	if err := s.st.CreateProject(r.Context(), pr, owner); err != nil {
		s.fail(w, r, err)
		return
	}
	s.authn.ForgetRoles() // the owner grant is new
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditProjectCreate, Project: pr.Name, Subject: owner})
	writeJSON(w, http.StatusCreated, pr)
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleViewer)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pr, err := s.st.GetProject(r.Context(), project)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleMaintainer)
	}
	var req apitypes.DescriptionUpdate
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil && req.Description != nil {
		err = s.st.UpdateProject(r.Context(), project, *req.Description)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.getProject(w, r)
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, "", auth.RoleOwner)
	}
	if err == nil {
		err = s.st.DeleteProject(r.Context(), project, s.cfg.Now())
		s.authn.ForgetRoles()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditProjectDelete, Project: project})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	role, err := s.authn.RoleOn(r.Context(), p, project, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.st.GetProject(r.Context(), project); err != nil && (role >= auth.RoleViewer) {
		s.fail(w, r, err)
		return
	}
	all, err := s.st.ListStates(r.Context(), project)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if role >= auth.RoleViewer {
		writeJSON(w, http.StatusOK, all)
		return
	}
	// Without a project grant, list only the states the caller has a grant on.
	out := []store.State{}
	for _, st := range all {
		if sr, err := s.authn.RoleOn(r.Context(), p, project, st.Name); err == nil && sr >= auth.RoleViewer {
			out = append(out, st)
		}
	}
	if len(out) == 0 && !p.IsAdmin() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: %s has no grant on project %s or its states", p.Name(), project))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createState(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, "", auth.RoleMaintainer)
	}
	var req apitypes.NameDescription
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		if verr := statepkg.ValidateName(req.Name); verr != nil {
			err = errf(http.StatusBadRequest, "state name: %v", verr)
		}
	}
	if err == nil {
		_, err = s.st.GetProject(r.Context(), project)
	}
	st := store.State{Project: project, Name: req.Name, Description: req.Description, CreatedAt: s.cfg.Now(), CreatedBy: p.Name()}
	if err == nil {
		err = s.st.CreateState(r.Context(), st)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleViewer)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.st.GetState(r.Context(), project, state)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) updateState(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleMaintainer)
	}
	var req apitypes.DescriptionUpdate
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil && req.Description != nil {
		err = s.st.UpdateState(r.Context(), project, state, *req.Description)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.getState(w, r)
}

func (s *Server) deleteState(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleOwner)
	}
	if err == nil {
		err = s.st.DeleteState(r.Context(), project, state, s.cfg.Now())
		s.authn.ForgetRoles()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Grants: owners manage them; viewers may read them.

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleViewer)
	}
	if err == nil {
		err = s.scopeExists(r, project, state)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	gs, err := s.st.ListGrants(r.Context(), project, state)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, gs)
}

func (s *Server) scopeExists(r *http.Request, project, state string) error {
	if state != "" {
		return s.stateExists(r.Context(), project, state)
	}
	_, err := s.st.GetProject(r.Context(), project)
	return err
}

func (s *Server) putGrant(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	subject := r.PathValue("subject")
	var p auth.Principal
	if err == nil {
		err = auth.ValidateSubject(subject)
	}
	if err == nil {
		p, err = s.need(r, project, state, auth.RoleOwner)
	}
	var req apitypes.GrantRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		_, err = auth.ParseRole(req.Role)
	}
	if err == nil {
		err = s.scopeExists(r, project, state)
	}
	g := store.Grant{Project: project, State: state, Subject: subject, Role: req.Role, CreatedAt: s.cfg.Now(), CreatedBy: p.Name()}
	if err == nil {
		g.TokenUser, err = tokenGrantOwner(p, subject)
	}
	if err == nil {
		err = s.st.PutGrant(r.Context(), g)
		s.authn.ForgetRoles()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditGrantPut, Project: project, State: state, Subject: subject, Detail: "role=" + req.Role})
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) deleteGrant(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	subject := r.PathValue("subject")
	var p auth.Principal
	if err == nil {
		err = auth.ValidateSubject(subject)
	}
	if err == nil {
		p, err = s.need(r, project, state, auth.RoleOwner)
	}
	if err == nil {
		err = s.st.DeleteGrant(r.Context(), project, state, subject)
		s.authn.ForgetRoles()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditGrantDelete, Project: project, State: state, Subject: subject})
	w.WriteHeader(http.StatusNoContent)
}

// tokenGrantOwner binds a token grant to the user owning the token, so no
// other user can claim it by creating a token of the same name (names are
// unique per user, and only a user or the admin creates a user's tokens).
// token:USER:NAME names the owner; token:NAME means the granter's own token.
// The admin and tokens without a user own no such token and must name the
// user: guessing it from whoever holds the name today would hand the grant
// to the first user to create it. Other subjects: "".
func tokenGrantOwner(p auth.Principal, subject string) (string, error) {
	user, name, ok := auth.TokenSubject(subject)
	switch {
	case !ok:
		return "", nil
	case user != "":
		return user, nil
	case p.IsAdmin() || p.Token.User == "":
		return "", errf(http.StatusBadRequest, "subject %s: name the token's user as token:USER:%s", subject, name)
	}
	return p.Token.User, nil
}
