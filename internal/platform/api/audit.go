package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// audit records an access change the caller p made. The change is done by
// then: a failure to record it is logged loudly, not turned into a failed
// request that did happen.
func (s *Server) audit(ctx context.Context, p auth.Principal, e store.AuditEvent) {
	e.ID, e.At, e.Actor = auth.NewID(), s.cfg.Now().UTC(), p.Name()
	if err := s.st.RecordAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "audit event not recorded", slog.String("action", e.Action), slog.String("actor", e.Actor),
			slog.String("project", e.Project), slog.String("state", e.State), slog.String("subject", e.Subject), slog.String("error", err.Error()))
	}
}

// tokenDetail describes a token for the audit record (never its secret).
func tokenDetail(t store.Token) string {
	var parts []string
	if len(t.Groups) > 0 {
		parts = append(parts, "groups="+strings.Join(t.Groups, ","))
	}
	if t.VersionDigest != "" {
		parts = append(parts, "version="+t.VersionDigest)
	}
	if t.ExpiresAt != nil {
		parts = append(parts, "expires="+t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, " ")
}

// auditLimit reads ?limit= (1-1000, default 100).
func auditLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, errf(http.StatusBadRequest, "limit must be 1-1000")
	}
	return n, nil
}

// projectAudit lists a project's access changes and minted tokens, for
// its owners and the admin.
func (s *Server) projectAudit(w http.ResponseWriter, r *http.Request) {
	project, _, err := names(r)
	if err == nil {
		_, err = s.need(r, project, "", auth.RoleOwner)
	}
	var limit int
	if err == nil {
		limit, err = auditLimit(r)
	}
	// Anyone may create a project, so a name can pass to another tenant
	// after a delete: its record starts with this project.
	var pr store.Project
	if err == nil {
		pr, err = s.st.GetProject(r.Context(), project)
	}
	var out []store.AuditEvent
	if err == nil {
		out, err = s.st.ListAudit(r.Context(), store.AuditFilter{Project: project, Since: pr.CreatedAt, Limit: limit})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// allAudit lists every event (tokens of no project too), for the admin.
func (s *Server) allAudit(w http.ResponseWriter, r *http.Request) {
	err := needAdmin(r)
	var limit int
	if err == nil {
		limit, err = auditLimit(r)
	}
	var out []store.AuditEvent
	if err == nil {
		out, err = s.st.ListAudit(r.Context(), store.AuditFilter{Project: r.URL.Query().Get("project"), Limit: limit})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
