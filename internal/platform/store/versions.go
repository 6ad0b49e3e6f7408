package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Version metadata is stored and answered as the API's wire types.
type (
	ComponentSummary = apitypes.ComponentSummary
	Version          = apitypes.Version
)

const versionCols = `project, state, tag, digest, revision, message, created_at, tagged_at, created_by, size, candidate, components`

func scanVersion(sc interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var created, tagged int64
	var cand int
	var comps string
	if err := sc.Scan(&v.Project, &v.State, &v.Tag, &v.Digest, &v.Revision, &v.Message, &created, &tagged, &v.CreatedBy, &v.Size, &cand, &comps); err != nil {
		return v, err
	}
	v.CreatedAt, v.TaggedAt, v.Candidate = fromNanos(created), fromNanos(tagged), cand != 0
	if err := json.Unmarshal([]byte(comps), &v.Components); err != nil {
		return v, fmt.Errorf("decode components of %s/%s:%s: %w", v.Project, v.State, v.Tag, err)
	}
	if v.Components == nil {
		v.Components = []ComponentSummary{}
	}
	return v, nil
}

// CommitVersion records a version: its manifest (once per digest), the chunk
// list of the manifest, and the tag row. It fails with ErrExists when the tag
// is taken. check runs inside the commit lock just before the insert, so a
// concurrent garbage collection cannot delete a chunk check has seen.
func (s *Store) CommitVersion(ctx context.Context, v Version, manifest []byte, chunks []string, check func(context.Context) error) error {
	comps, err := json.Marshal(v.Components)
	if err != nil {
		return fmt.Errorf("encode components: %w", err)
	}
	return s.withCommitLock(ctx, func(tx *sql.Tx) error {
		if check != nil {
			if err := check(ctx); err != nil {
				return err
			}
		}
		now := nanos(v.CreatedAt)
		if _, err := tx.ExecContext(ctx, `INSERT INTO manifests (digest, body, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING`,
			v.Digest, string(manifest), now); err != nil {
			return fmt.Errorf("store manifest: %w", err)
		}
		for _, c := range chunks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO manifest_chunks (manifest, chunk) VALUES ($1, $2) ON CONFLICT (manifest, chunk) DO NOTHING`,
				v.Digest, c); err != nil {
				return fmt.Errorf("store manifest chunks: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO versions (`+versionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			v.Project, v.State, v.Tag, v.Digest, v.Revision, v.Message, now, nanos(v.TaggedAt), v.CreatedBy, v.Size, boolInt(v.Candidate), string(comps))
		if isUnique(err) {
			return fmt.Errorf("tag %q of %s/%s: %w", v.Tag, v.Project, v.State, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert version: %w", err)
		}
		return nil
	})
}

// withCommitLock runs fn in a transaction holding the shared side of the
// GC lock.
func (s *Store) withCommitLock(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.dialect == SQLite {
		s.gcMu.RLock()
		defer s.gcMu.RUnlock()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(7357002)`); err != nil {
				return fmt.Errorf("take commit lock: %w", err)
			}
		}
		return fn(tx)
	})
}

// withGCLock runs fn in a short transaction holding the exclusive side of
// the GC lock: no version is committed and no upload recorded meanwhile, on
// any server sharing the database. PostgreSQL takes a transaction-scoped
// advisory lock; SQLite holds the write lock (an IMMEDIATE transaction,
// which also stops a server in another process) plus an in-process mutex.
// Callers keep fn short: on SQLite every writer waits for it.
func (s *Store) withGCLock(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.dialect == SQLite {
		s.gcMu.Lock()
		defer s.gcMu.Unlock()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7357002)`); err != nil {
				return fmt.Errorf("take gc lock: %w", err)
			}
		}
		return fn(tx)
	})
}

// DropUnusedManifests deletes manifests (and their chunk lists) no version
// uses any more, so their chunks become garbage. It takes the GC lock for
// two statements: a commit reusing a manifest must not lose it halfway.
func (s *Store) DropUnusedManifests(ctx context.Context) error {
	return s.withGCLock(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM manifest_chunks WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.digest = manifest_chunks.manifest)`); err != nil {
			return fmt.Errorf("drop unused manifest chunks: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.digest = manifests.digest)`); err != nil {
			return fmt.Errorf("drop unused manifests: %w", err)
		}
		return nil
	})
}

// ReferencedChunks returns every chunk a live version references. It takes
// no lock: garbage collection uses it to pick candidates and checks each
// batch of them again under the lock (WithGCBatch).
func (s *Store) ReferencedChunks(ctx context.Context) (map[string]struct{}, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT c.chunk FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest`)
	if err != nil {
		return nil, fmt.Errorf("list referenced chunks: %w", err)
	}
	defer rows.Close()
	out := map[string]struct{}{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list referenced chunks: %w", err)
		}
		out[c] = struct{}{}
	}
	return out, rows.Err()
}

// WithGCBatch runs fn, under the exclusive GC lock, with those of
// candidates that are still garbage: no live version references them and
// no upload of them was recorded after uploadedAfter. Whatever fn deletes
// cannot be in use: a commit naming a chunk either finished before (the
// chunk is referenced, so not passed to fn) or runs after and finds it
// gone (409, the client uploads it again); an upload either recorded itself
// before (spared) or checks for the blob after (and stores it again).
func (s *Store) WithGCBatch(ctx context.Context, candidates []string, uploadedAfter time.Time, fn func(ctx context.Context, garbage []string) error) error {
	return s.withGCLock(ctx, func(tx *sql.Tx) error {
		live, err := s.chunksIn(ctx, tx, `SELECT DISTINCT c.chunk FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest WHERE c.chunk IN (%s)`, nil, candidates)
		if err != nil {
			return err
		}
		recent, err := s.chunksIn(ctx, tx, `SELECT chunk FROM chunk_uploads WHERE uploaded_at > $1 AND chunk IN (%s)`, []any{nanos(uploadedAfter)}, candidates)
		if err != nil {
			return err
		}
		garbage := make([]string, 0, len(candidates))
		for _, c := range candidates {
			if !live[c] && !recent[c] {
				garbage = append(garbage, c)
			}
		}
		return fn(ctx, garbage)
	})
}

// GetVersion returns the version with the given tag.
func (s *Store) GetVersion(ctx context.Context, project, state, tag string) (Version, error) {
	v, err := scanVersion(s.queryRow(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 AND tag = $3`, project, state, tag))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("version %s/%s:%s: %w", project, state, tag, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get version: %w", err)
	}
	return v, nil
}

// GetVersionByDigest returns the most recently tagged version of the state
// whose manifest has the digest.
func (s *Store) GetVersionByDigest(ctx context.Context, project, state, digest string) (Version, error) {
	v, err := scanVersion(s.queryRow(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 AND digest = $3
		ORDER BY tagged_at DESC, tag DESC LIMIT 1`, project, state, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("version %s/%s@%s: %w", project, state, digest, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get version: %w", err)
	}
	return v, nil
}

// NewestVersion returns the most recently tagged candidate or non-candidate
// version: @candidate and @latest.
func (s *Store) NewestVersion(ctx context.Context, project, state string, candidate bool) (Version, error) {
	v, err := scanVersion(s.queryRow(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 AND candidate = $3
		ORDER BY tagged_at DESC, tag DESC LIMIT 1`, project, state, boolInt(candidate)))
	if errors.Is(err, sql.ErrNoRows) {
		what := "latest"
		if candidate {
			what = "candidate"
		}
		return v, fmt.Errorf("no %s version of %s/%s: %w", what, project, state, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get version: %w", err)
	}
	return v, nil
}

// ListVersions returns a state's versions, newest first.
func (s *Store) ListVersions(ctx context.Context, project, state string) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 ORDER BY tagged_at DESC, tag DESC`, project, state)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("list versions: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// TagExists reports whether the state has a version with the tag.
func (s *Store) TagExists(ctx context.Context, project, state, tag string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM versions WHERE project = $1 AND state = $2 AND tag = $3`, project, state, tag).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Retag renames a version's tag. When the version stops being a candidate
// (a promote) its tagged_at moves to now, so it becomes @latest.
func (s *Store) Retag(ctx context.Context, project, state, from, to string, candidate bool, now time.Time) (Version, error) {
	var out Version
	err := s.tx(ctx, func(tx *sql.Tx) error {
		v, err := scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 AND tag = $3`, project, state, from))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("version %s/%s:%s: %w", project, state, from, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("retag: %w", err)
		}
		tagged := v.TaggedAt
		if v.Candidate && !candidate {
			tagged = now
		}
		_, err = tx.ExecContext(ctx, `UPDATE versions SET tag = $4, candidate = $5, tagged_at = $6 WHERE project = $1 AND state = $2 AND tag = $3`,
			project, state, from, to, boolInt(candidate), nanos(tagged))
		if isUnique(err) {
			return fmt.Errorf("tag %q of %s/%s: %w", to, project, state, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("retag: %w", err)
		}
		v.Tag, v.Candidate, v.TaggedAt = to, candidate, tagged
		out = v
		return nil
	})
	return out, err
}

// DeleteVersion removes a tag. Its chunks are left for garbage collection.
func (s *Store) DeleteVersion(ctx context.Context, project, state, tag string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE project = $1 AND state = $2 AND tag = $3`, project, state, tag)
		if err != nil {
			return fmt.Errorf("delete version %s/%s:%s: %w", project, state, tag, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("version %s/%s:%s: %w", project, state, tag, ErrNotFound)
		}
		return revokeOrphanedScopedTokens(ctx, tx, project, state, at)
	})
}

// PruneCandidates deletes all candidate versions of a state except the keep
// newest, returning the deleted ones.
func (s *Store) PruneCandidates(ctx context.Context, project, state string, keep int, at time.Time) ([]Version, error) {
	var deleted []Version
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+versionCols+` FROM versions WHERE project = $1 AND state = $2 AND candidate = 1
			ORDER BY tagged_at DESC, tag DESC`, project, state)
		if err != nil {
			return fmt.Errorf("prune candidates: %w", err)
		}
		var all []Version
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("prune candidates: %w", err)
			}
			all = append(all, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("prune candidates: %w", err)
		}
		if keep < len(all) {
			deleted = all[keep:]
		}
		for _, v := range deleted {
			if _, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE project = $1 AND state = $2 AND tag = $3`, project, state, v.Tag); err != nil {
				return fmt.Errorf("prune candidates: %w", err)
			}
		}
		return revokeOrphanedScopedTokens(ctx, tx, project, state, at)
	})
	if deleted == nil {
		deleted = []Version{}
	}
	return deleted, err
}

// Manifest returns the stored manifest bytes for a digest.
func (s *Store) Manifest(ctx context.Context, digest string) ([]byte, error) {
	var body string
	err := s.queryRow(ctx, `SELECT body FROM manifests WHERE digest = $1`, digest).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("manifest %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get manifest: %w", err)
	}
	return []byte(body), nil
}

// ChunkInState reports whether a live version of the state references the chunk.
func (s *Store) ChunkInState(ctx context.Context, project, state, chunk string) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
		WHERE c.chunk = $3 AND v.project = $1 AND v.state = $2 LIMIT 1`, project, state, chunk).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check chunk: %w", err)
	}
	return true, nil
}

// ChunkInManifest reports whether the manifest references the chunk.
func (s *Store) ChunkInManifest(ctx context.Context, manifest, chunk string) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM manifest_chunks WHERE manifest = $1 AND chunk = $2`, manifest, chunk).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check chunk: %w", err)
	}
	return true, nil
}

type execQuerier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}
