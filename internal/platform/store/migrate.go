package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one schema step. Steps are append-only: a released step is
// never edited, a change is a new step.
type migration struct {
	version int
	name    string
	sql     []string
}

// migrations is the schema history. Types are the shared subset of SQLite and
// PostgreSQL: TEXT, BIGINT (timestamps as unix nanoseconds), INTEGER (0/1
// booleans).
var migrations = []migration{
	{1, "initial schema", []string{
		`CREATE TABLE projects (
			name TEXT PRIMARY KEY,
			description TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE TABLE states (
			project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
			name TEXT NOT NULL,
			description TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (project, name)
		)`,
		`CREATE TABLE versions (
			project TEXT NOT NULL,
			state TEXT NOT NULL,
			tag TEXT NOT NULL,
			digest TEXT NOT NULL,
			revision TEXT NOT NULL DEFAULT '',
			message TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			tagged_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			size BIGINT NOT NULL DEFAULT 0,
			candidate INTEGER NOT NULL DEFAULT 0,
			components TEXT NOT NULL DEFAULT '[]',
			PRIMARY KEY (project, state, tag),
			FOREIGN KEY (project, state) REFERENCES states(project, name) ON DELETE CASCADE
		)`,
		`CREATE INDEX versions_order ON versions (project, state, candidate, tagged_at)`,
		`CREATE INDEX versions_digest ON versions (project, state, digest)`,
		`CREATE INDEX versions_manifest ON versions (digest)`,
		// Manifests and their chunk lists are keyed by manifest digest: the
		// same manifest may back versions in several states.
		`CREATE TABLE manifests (
			digest TEXT PRIMARY KEY,
			body TEXT NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		`CREATE TABLE manifest_chunks (
			manifest TEXT NOT NULL,
			chunk TEXT NOT NULL,
			PRIMARY KEY (manifest, chunk)
		)`,
		`CREATE INDEX manifest_chunks_chunk ON manifest_chunks (chunk)`,
		`CREATE TABLE grants (
			project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
			state TEXT NOT NULL DEFAULT '',
			subject TEXT NOT NULL,
			role TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (project, state, subject)
		)`,
		`CREATE TABLE tokens (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL UNIQUE,
			hash TEXT NOT NULL UNIQUE,
			kind TEXT NOT NULL,
			username TEXT NOT NULL DEFAULT '',
			groups_csv TEXT NOT NULL DEFAULT '',
			project TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL DEFAULT '',
			version_digest TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			expires_at BIGINT,
			revoked_at BIGINT
		)`,
		`CREATE TABLE scripts (
			project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
			name TEXT NOT NULL,
			description TEXT NOT NULL DEFAULT '',
			image TEXT NOT NULL DEFAULT '',
			interpreter TEXT NOT NULL,
			body TEXT NOT NULL,
			variables TEXT NOT NULL DEFAULT '[]',
			service_account TEXT NOT NULL DEFAULT '',
			credentials TEXT NOT NULL DEFAULT '[]',
			author TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			modified_at BIGINT NOT NULL,
			PRIMARY KEY (project, name)
		)`,
		`CREATE TABLE script_runs (
			id TEXT PRIMARY KEY,
			project TEXT NOT NULL,
			script TEXT NOT NULL,
			status TEXT NOT NULL,
			variables TEXT NOT NULL DEFAULT '{}',
			target TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			started_at BIGINT,
			finished_at BIGINT,
			exit_code INTEGER,
			log_tail TEXT NOT NULL DEFAULT '',
			stack_trace TEXT NOT NULL DEFAULT '',
			FOREIGN KEY (project, script) REFERENCES scripts(project, name) ON DELETE CASCADE
		)`,
		`CREATE INDEX script_runs_script ON script_runs (project, script, created_at)`,
	}},
	// A capture's agent Jobs upload each component's description as a chunk
	// the executor reads back before committing; this remembers such uploads
	// so the state's maintainers (not only the admin) may read them while no
	// version references them yet.
	{2, "chunk uploads kept for read-back", []string{
		`CREATE TABLE chunk_uploads (
			project TEXT NOT NULL,
			state TEXT NOT NULL,
			chunk TEXT NOT NULL,
			uploaded_at BIGINT NOT NULL,
			PRIMARY KEY (project, state, chunk),
			FOREIGN KEY (project, state) REFERENCES states(project, name) ON DELETE CASCADE
		)`,
		`CREATE INDEX chunk_uploads_uploaded_at ON chunk_uploads (uploaded_at)`,
	}},
	// Every chunk upload is recorded, not only read-back ones: an upload is
	// how a state proves it holds a chunk's bytes (a commit may name only
	// chunks its state uploaded or the caller can already read), its size
	// counts towards the project's upload quota, and garbage collection
	// spares chunks uploaded within its grace period even when their blob
	// is older (a re-upload of bytes the store already had).
	{3, "chunk uploads prove possession and count towards quotas", []string{
		`ALTER TABLE chunk_uploads ADD COLUMN size BIGINT NOT NULL DEFAULT 0`,
		// Rows from before this step were all read-back uploads.
		`ALTER TABLE chunk_uploads ADD COLUMN read_back INTEGER NOT NULL DEFAULT 1`,
		`CREATE INDEX chunk_uploads_chunk ON chunk_uploads (chunk, uploaded_at)`,
	}},
	// Tokens record the token that minted them (a child never outlives its
	// parent and is revoked with it), and names are unique per user, not
	// globally: creating a token must not reveal another user's token names.
	// A token:NAME grant is bound to the token's owner (token_user), so no
	// other user can claim it by creating a token of that name; existing
	// grants bind to the owner of the token that has the name today, grants
	// naming no existing token stay unbound and match nothing.
	{4, "token parents, per-user token names, owner-bound token grants", []string{
		`CREATE TABLE tokens_v4 (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			hash TEXT NOT NULL UNIQUE,
			kind TEXT NOT NULL,
			username TEXT NOT NULL DEFAULT '',
			groups_csv TEXT NOT NULL DEFAULT '',
			project TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL DEFAULT '',
			version_digest TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			expires_at BIGINT,
			revoked_at BIGINT,
			parent_id TEXT NOT NULL DEFAULT '',
			UNIQUE (username, name)
		)`,
		`INSERT INTO tokens_v4 (id, name, hash, kind, username, groups_csv, project, state, version_digest, created_at, created_by, expires_at, revoked_at)
			SELECT id, name, hash, kind, username, groups_csv, project, state, version_digest, created_at, created_by, expires_at, revoked_at FROM tokens`,
		`ALTER TABLE grants ADD COLUMN token_user TEXT NOT NULL DEFAULT ''`,
		`UPDATE grants SET token_user = (SELECT t.username FROM tokens t WHERE t.name = substr(grants.subject, 7))
			WHERE subject LIKE 'token:%' AND EXISTS (SELECT 1 FROM tokens t WHERE t.name = substr(grants.subject, 7) AND t.username <> '')`,
		`DROP TABLE tokens`,
		`ALTER TABLE tokens_v4 RENAME TO tokens`,
		`CREATE INDEX tokens_parent ON tokens (parent_id)`,
	}},
	// Every change of access (projects, grants, tokens) and every job or
	// upload token minted is recorded with who, what and when. No foreign
	// keys: the record of a deleted project stays.
	{5, "audit events", []string{
		`CREATE TABLE audit_events (
			id TEXT PRIMARY KEY,
			at BIGINT NOT NULL,
			actor TEXT NOT NULL,
			action TEXT NOT NULL,
			project TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL DEFAULT '',
			subject TEXT NOT NULL DEFAULT '',
			detail TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX audit_events_project ON audit_events (project, at)`,
		`CREATE INDEX audit_events_at ON audit_events (at)`,
	}},
}

// migrate applies pending migrations, each in its own transaction. On
// PostgreSQL an advisory lock keeps replicas starting together from racing.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7357001)`); err != nil {
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7357001)`) //nolint:errcheck // released with the session anyway
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	// Every step not applied yet runs, not only those above the highest
	// applied: steps merged from parallel branches may land with a lower
	// number than one a development database already has.
	applied := map[int]bool{}
	current := 0
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: read version: %w", err)
		}
		applied[v] = true
		current = max(current, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if n := migrations[len(migrations)-1].version; current > n {
		return fmt.Errorf("database schema version %d is newer than this server understands (%d): upgrade unikube-platform", current, n)
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %d: %w", m.version, err)
		}
		for _, stmt := range m.sql {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("migrate %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, nanos(time.Now())); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate %d: record: %w", m.version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %d: commit: %w", m.version, err)
		}
	}
	return nil
}

// SchemaVersion reports the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}
