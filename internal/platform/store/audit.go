package store

import (
	"context"
	"fmt"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Audit actions: every change of access and every token minted.
const (
	AuditProjectCreate     = "project.create"
	AuditProjectDelete     = "project.delete"
	AuditGrantPut          = "grant.put"
	AuditGrantDelete       = "grant.delete"
	AuditTokenCreate       = "token.create"
	AuditTokenRevoke       = "token.revoke"
	AuditJobTokenCreate    = "job-token.create"
	AuditUploadTokenCreate = "upload-token.create"
)

// AuditEvent is stored and answered as the API's wire type.
type AuditEvent = apitypes.AuditEvent

// RecordAudit stores an event.
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) error {
	_, err := s.exec(ctx, `INSERT INTO audit_events (id, at, actor, action, project, state, subject, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.ID, nanos(e.At), e.Actor, e.Action, e.Project, e.State, e.Subject, e.Detail)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	return nil
}

// AuditFilter selects events: of one project (all with ""), newest first,
// at most Limit.
type AuditFilter struct {
	Project string
	// Since, when set, leaves out events before it (a project's record
	// starts when the project of that name was created).
	Since time.Time
	Limit int
}

// ListAudit returns events newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := `SELECT id, at, actor, action, project, state, subject, detail FROM audit_events`
	args := []any{}
	if f.Project != "" {
		q += ` WHERE project = $1`
		args = append(args, f.Project)
	}
	if !f.Since.IsZero() {
		if len(args) == 0 {
			q += ` WHERE at >= $1`
		} else {
			q += ` AND at >= $2`
		}
		args = append(args, nanos(f.Since))
	}
	q += fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, max(f.Limit, 1))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Project, &e.State, &e.Subject, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
