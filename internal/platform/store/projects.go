package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Projects and states are stored and answered as the API's wire types.
type (
	Project = apitypes.Project
	State   = apitypes.State
)

// CreateProject inserts a project and, when owner is not empty, an owner
// grant for it in the same transaction.
func (s *Store) CreateProject(ctx context.Context, p Project, owner string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (name, description, created_at, created_by) VALUES ($1, $2, $3, $4)`,
			p.Name, p.Description, nanos(p.CreatedAt), p.CreatedBy)
		if isUnique(err) {
			return fmt.Errorf("project %q: %w", p.Name, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("create project: %w", err)
		}
		if owner != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (project, state, subject, role, created_at, created_by) VALUES ($1, '', $2, 'owner', $3, $4)`,
				p.Name, owner, nanos(p.CreatedAt), p.CreatedBy); err != nil {
				return fmt.Errorf("grant owner: %w", err)
			}
		}
		return nil
	})
}

// GetProject returns one project.
func (s *Store) GetProject(ctx context.Context, name string) (Project, error) {
	var p Project
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT name, description, created_at, created_by FROM projects WHERE name = $1`, name).
		Scan(&p.Name, &p.Description, &created, &p.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("project %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("get project: %w", err)
	}
	p.CreatedAt = fromNanos(created)
	return p, nil
}

// ListProjects returns all projects by name.
func (s *Store) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, description, created_at, created_by FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	out := []Project{}
	for rows.Next() {
		var p Project
		var created int64
		if err := rows.Scan(&p.Name, &p.Description, &created, &p.CreatedBy); err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		p.CreatedAt = fromNanos(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// UpdateProject changes a project's description.
func (s *Store) UpdateProject(ctx context.Context, name, description string) error {
	return s.execOne(ctx, fmt.Sprintf("project %q", name), `UPDATE projects SET description = $2 WHERE name = $1`, name, description)
}

// DeleteProject removes a project with its states, versions, grants, scripts
// and runs. Chunks are left for garbage collection.
func (s *Store) DeleteProject(ctx context.Context, name string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM script_runs WHERE project = $1`,
			`DELETE FROM scripts WHERE project = $1`,
			`DELETE FROM versions WHERE project = $1`,
			`DELETE FROM grants WHERE project = $1`,
			`DELETE FROM states WHERE project = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return fmt.Errorf("delete project: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("delete project: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("project %q: %w", name, ErrNotFound)
		}
		return revokeOrphanedScopedTokens(ctx, tx, name, "", at)
	})
}

// CreateState inserts a named state.
func (s *Store) CreateState(ctx context.Context, st State) error {
	_, err := s.exec(ctx, `INSERT INTO states (project, name, description, created_at, created_by) VALUES ($1, $2, $3, $4, $5)`,
		st.Project, st.Name, st.Description, nanos(st.CreatedAt), st.CreatedBy)
	if isUnique(err) {
		return fmt.Errorf("state %s/%s: %w", st.Project, st.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create state: %w", err)
	}
	return nil
}

// GetState returns one named state.
func (s *Store) GetState(ctx context.Context, project, name string) (State, error) {
	var st State
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT project, name, description, created_at, created_by FROM states WHERE project = $1 AND name = $2`, project, name).
		Scan(&st.Project, &st.Name, &st.Description, &created, &st.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("state %s/%s: %w", project, name, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("get state: %w", err)
	}
	st.CreatedAt = fromNanos(created)
	return st, nil
}

// ListStates returns the states of a project by name.
func (s *Store) ListStates(ctx context.Context, project string) ([]State, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT project, name, description, created_at, created_by FROM states WHERE project = $1 ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("list states: %w", err)
	}
	defer rows.Close()
	out := []State{}
	for rows.Next() {
		var st State
		var created int64
		if err := rows.Scan(&st.Project, &st.Name, &st.Description, &created, &st.CreatedBy); err != nil {
			return nil, fmt.Errorf("list states: %w", err)
		}
		st.CreatedAt = fromNanos(created)
		out = append(out, st)
	}
	return out, rows.Err()
}

// UpdateState changes a state's description.
func (s *Store) UpdateState(ctx context.Context, project, name, description string) error {
	return s.execOne(ctx, fmt.Sprintf("state %s/%s", project, name),
		`UPDATE states SET description = $3 WHERE project = $1 AND name = $2`, project, name, description)
}

// DeleteState removes a state with its versions and grants.
func (s *Store) DeleteState(ctx context.Context, project, name string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM versions WHERE project = $1 AND state = $2`,
			`DELETE FROM grants WHERE project = $1 AND state = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, project, name); err != nil {
				return fmt.Errorf("delete state: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM states WHERE project = $1 AND name = $2`, project, name)
		if err != nil {
			return fmt.Errorf("delete state: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("state %s/%s: %w", project, name, ErrNotFound)
		}
		return revokeOrphanedScopedTokens(ctx, tx, project, name, at)
	})
}

// execOne runs a statement that must affect exactly one row.
func (s *Store) execOne(ctx context.Context, what, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
