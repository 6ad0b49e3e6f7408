package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Variable is stored and answered as the API's wire type. A sensitive
// variable's default is kept only sealed (Script.Sealed); the API never
// answers with it, only with DefaultSet.
type Variable = apitypes.Variable

// storedVariable is a Variable as the variables column holds it, with the
// sealed default of a sensitive one.
type storedVariable struct {
	Variable
	SealedDefault string `json:"sealed_default,omitempty"`
}

func encodeVariables(vs []Variable, sealed map[string]string) (string, error) {
	out := make([]storedVariable, 0, len(vs))
	for _, v := range vs {
		out = append(out, storedVariable{Variable: v, SealedDefault: sealed[v.Name]})
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeVariables(s string) ([]Variable, map[string]string, error) {
	var in []storedVariable
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, nil, err
	}
	out := make([]Variable, 0, len(in))
	sealed := map[string]string{}
	for _, v := range in {
		if v.SealedDefault != "" {
			sealed[v.Name] = v.SealedDefault
		}
		out = append(out, v.Variable)
	}
	return out, sealed, nil
}

// Credential is stored and answered as the API's wire type: a reference,
// never a secret value.
type Credential = apitypes.Credential

// Script is a cluster script as stored: what the API shows of it, and
// the sealed defaults of its sensitive variables (AES-GCM under the
// server's secret key), which the API never shows.
type Script struct {
	apitypes.Script
	// Sealed maps a sensitive variable's name to its sealed default.
	Sealed map[string]string `json:"-"`
}

const scriptCols = `project, name, description, image, interpreter, body, variables, service_account, credentials, author, created_at, modified_at`

func scanScript(sc interface{ Scan(...any) error }) (Script, error) {
	var s Script
	var vars, creds string
	var created, modified int64
	if err := sc.Scan(&s.Project, &s.Name, &s.Description, &s.Image, &s.Interpreter, &s.Body, &vars, &s.ServiceAccount, &creds, &s.Author, &created, &modified); err != nil {
		return s, err
	}
	var err error
	if s.Variables, s.Sealed, err = decodeVariables(vars); err != nil {
		return s, fmt.Errorf("decode variables: %w", err)
	}
	if err := json.Unmarshal([]byte(creds), &s.Credentials); err != nil {
		return s, fmt.Errorf("decode credentials: %w", err)
	}
	if s.Variables == nil {
		s.Variables = []Variable{}
	}
	if s.Credentials == nil {
		s.Credentials = []Credential{}
	}
	s.CreatedAt, s.ModifiedAt = fromNanos(created), fromNanos(modified)
	return s, nil
}

// PutScript creates a script or replaces its content, keeping created_at.
// It reports whether the script was created.
func (s *Store) PutScript(ctx context.Context, sc Script) (bool, error) {
	vars, err := encodeVariables(sc.Variables, sc.Sealed)
	if err != nil {
		return false, fmt.Errorf("encode variables: %w", err)
	}
	creds, err := json.Marshal(nonNil(sc.Credentials))
	if err != nil {
		return false, fmt.Errorf("encode credentials: %w", err)
	}
	created := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scripts SET description = $3, image = $4, interpreter = $5, body = $6, variables = $7,
			service_account = $8, credentials = $9, author = $10, modified_at = $11 WHERE project = $1 AND name = $2`,
			sc.Project, sc.Name, sc.Description, sc.Image, sc.Interpreter, sc.Body, vars, sc.ServiceAccount, string(creds), sc.Author, nanos(sc.ModifiedAt))
		if err != nil {
			return fmt.Errorf("update script: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		created = true
		_, err = tx.ExecContext(ctx, `INSERT INTO scripts (`+scriptCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			sc.Project, sc.Name, sc.Description, sc.Image, sc.Interpreter, sc.Body, vars, sc.ServiceAccount, string(creds), sc.Author,
			nanos(sc.CreatedAt), nanos(sc.ModifiedAt))
		if err != nil {
			return fmt.Errorf("create script: %w", err)
		}
		return nil
	})
	return created, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// GetScript returns one script.
func (s *Store) GetScript(ctx context.Context, project, name string) (Script, error) {
	sc, err := scanScript(s.db.QueryRowContext(ctx, `SELECT `+scriptCols+` FROM scripts WHERE project = $1 AND name = $2`, project, name))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("script %s/%s: %w", project, name, ErrNotFound)
	}
	if err != nil {
		return sc, fmt.Errorf("get script: %w", err)
	}
	return sc, nil
}

// ListScripts returns a project's scripts by name.
func (s *Store) ListScripts(ctx context.Context, project string) ([]Script, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+scriptCols+` FROM scripts WHERE project = $1 ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("list scripts: %w", err)
	}
	defer rows.Close()
	out := []Script{}
	for rows.Next() {
		sc, err := scanScript(rows)
		if err != nil {
			return nil, fmt.Errorf("list scripts: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// DeleteScript removes a script and its runs.
func (s *Store) DeleteScript(ctx context.Context, project, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM script_runs WHERE project = $1 AND script = $2`, project, name); err != nil {
			return fmt.Errorf("delete script runs: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM scripts WHERE project = $1 AND name = $2`, project, name)
		if err != nil {
			return fmt.Errorf("delete script: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("script %s/%s: %w", project, name, ErrNotFound)
		}
		return nil
	})
}

// Run statuses.
const (
	RunPending   = apitypes.RunPending
	RunRunning   = apitypes.RunRunning
	RunSucceeded = apitypes.RunSucceeded
	RunFailed    = apitypes.RunFailed
)

// Run is stored and answered as the API's wire type; its
// SensitiveDefaults are never stored.
type Run = apitypes.Run

const runCols = `id, project, script, status, variables, target, created_at, created_by, started_at, finished_at, exit_code, log_tail, stack_trace`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var vars string
	var created int64
	var started, finished, exit sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Project, &r.Script, &r.Status, &vars, &r.Target, &created, &r.CreatedBy, &started, &finished, &exit, &r.LogTail, &r.StackTrace); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(vars), &r.Variables); err != nil {
		return r, fmt.Errorf("decode run variables: %w", err)
	}
	r.CreatedAt, r.StartedAt, r.FinishedAt = fromNanos(created), ptrTime(started), ptrTime(finished)
	if exit.Valid {
		c := int(exit.Int64)
		r.ExitCode = &c
	}
	return r, nil
}

func runArgs(r Run) ([]any, error) {
	vars, err := json.Marshal(r.Variables)
	if err != nil {
		return nil, fmt.Errorf("encode run variables: %w", err)
	}
	var exit sql.NullInt64
	if r.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*r.ExitCode), Valid: true}
	}
	return []any{r.ID, r.Project, r.Script, r.Status, string(vars), r.Target, nanos(r.CreatedAt), r.CreatedBy,
		nullNanos(r.StartedAt), nullNanos(r.FinishedAt), exit, r.LogTail, r.StackTrace}, nil
}

// CreateRun records a new run.
func (s *Store) CreateRun(ctx context.Context, r Run) error {
	args, err := runArgs(r)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, `INSERT INTO script_runs (`+runCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, args...); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	return nil
}

// UpdateRun stores a run's status fields.
func (s *Store) UpdateRun(ctx context.Context, r Run) error {
	var exit sql.NullInt64
	if r.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*r.ExitCode), Valid: true}
	}
	return s.execOne(ctx, fmt.Sprintf("run %s", r.ID), `UPDATE script_runs SET status = $4, started_at = $5, finished_at = $6, exit_code = $7,
		log_tail = $8, stack_trace = $9 WHERE id = $1 AND project = $2 AND script = $3`,
		r.ID, r.Project, r.Script, r.Status, nullNanos(r.StartedAt), nullNanos(r.FinishedAt), exit, r.LogTail, r.StackTrace)
}

// GetRun returns one run of a script.
func (s *Store) GetRun(ctx context.Context, project, script, id string) (Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM script_runs WHERE id = $1 AND project = $2 AND script = $3`, id, project, script))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get run: %w", err)
	}
	return r, nil
}

// ListRuns returns a script's runs, newest first, at most limit.
func (s *Store) ListRuns(ctx context.Context, project, script string, limit int) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runCols+` FROM script_runs WHERE project = $1 AND script = $2 ORDER BY created_at DESC LIMIT $3`, project, script, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SealPlainSensitiveDefaults seals the defaults of sensitive variables
// stored in plain text (by a platform from before defaults were sealed)
// with seal, and reports how many it sealed. Without a key (seal nil) it
// only counts them. Each script is rewritten only if unchanged since it
// was read, so a concurrent PUT or another replica doing the same wins.
func (s *Store) SealPlainSensitiveDefaults(ctx context.Context, seal func(project, script, variable, plain string) (string, error)) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT project, name, variables FROM scripts`)
	if err != nil {
		return 0, fmt.Errorf("list scripts: %w", err)
	}
	type row struct{ project, name, vars string }
	var plain []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.project, &r.name, &r.vars); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list scripts: %w", err)
		}
		plain = append(plain, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list scripts: %w", err)
	}
	n := 0
	for _, r := range plain {
		vars, sealedDefaults, err := decodeVariables(r.vars)
		if err != nil {
			return n, fmt.Errorf("script %s/%s: decode variables: %w", r.project, r.name, err)
		}
		changed := false
		for i, v := range vars {
			if !v.Sensitive || v.Default == "" {
				continue
			}
			n++
			if seal == nil {
				continue
			}
			sealed, err := seal(r.project, r.name, v.Name, v.Default)
			if err != nil {
				return n, fmt.Errorf("script %s/%s: seal the default of %s: %w", r.project, r.name, v.Name, err)
			}
			vars[i].Default, vars[i].DefaultSet = "", true
			sealedDefaults[v.Name] = sealed
			changed = true
		}
		if !changed {
			continue
		}
		enc, err := encodeVariables(vars, sealedDefaults)
		if err != nil {
			return n, fmt.Errorf("script %s/%s: encode variables: %w", r.project, r.name, err)
		}
		if _, err := s.exec(ctx, `UPDATE scripts SET variables = $1 WHERE project = $2 AND name = $3 AND variables = $4`,
			enc, r.project, r.name, r.vars); err != nil {
			return n, fmt.Errorf("script %s/%s: store sealed defaults: %w", r.project, r.name, err)
		}
	}
	return n, nil
}
