package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Upload is one verified chunk upload to a state.
type Upload struct {
	Project, State, Chunk string
	// Size is the chunk's stored (compressed) size; it counts towards the
	// project's upload quota.
	Size int64
	// ReadBack lets the state's maintainers download the chunk before a
	// version references it (see ChunkUploadedTo).
	ReadBack bool
	At       time.Time
}

// QuotaError is returned by RecordUpload when the upload would take the
// project over its upload quota. Nothing was recorded.
type QuotaError struct {
	Project string
	Usage   int64 // bytes the project holds now
	Size    int64 // bytes the refused upload would add
	Quota   int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("project %s is over its upload quota: it holds %d bytes of uploaded chunks, this chunk adds %d, the quota is %d bytes; "+
		"delete versions (their chunks stop counting at the next garbage collection) or ask the platform admin to raise --project-upload-quota",
		e.Project, e.Usage, e.Size, e.Quota)
}

// RecordUpload remembers that the caller proved possession of the chunk's
// bytes by uploading them to project/state: from now on commits to the state
// may name the chunk, and garbage collection spares it for its grace period.
// With quota > 0 an upload that adds a chunk new to the project and would
// take the project's usage (ProjectUsage) past quota fails with a
// *QuotaError, recording nothing. It reports whether the state had recorded
// an upload of the chunk before.
//
// It runs under the commit side of the GC lock, so a garbage collection
// batch either sees the record (and spares the chunk) or finished deleting
// before it, so the caller's following existence check sees the deletion
// and stores the bytes again.
func (s *Store) RecordUpload(ctx context.Context, u Upload, quota int64) (again bool, err error) {
	err = s.withCommitLock(ctx, func(tx *sql.Tx) error {
		var inState, inProject int
		err := tx.QueryRowContext(ctx, `SELECT
			COALESCE(MAX(CASE WHEN state = $2 THEN 1 ELSE 0 END), 0), COUNT(*)
			FROM chunk_uploads WHERE project = $1 AND chunk = $3`, u.Project, u.State, u.Chunk).Scan(&inState, &inProject)
		if err != nil {
			return fmt.Errorf("record upload of chunk %s: %w", u.Chunk, err)
		}
		again = inState == 1
		if quota > 0 && inProject == 0 {
			usage, err := projectUsage(ctx, tx, u.Project)
			if err != nil {
				return err
			}
			if usage+u.Size > quota {
				return &QuotaError{Project: u.Project, Usage: usage, Size: u.Size, Quota: quota}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO chunk_uploads (project, state, chunk, uploaded_at, size, read_back) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (project, state, chunk) DO UPDATE SET uploaded_at = excluded.uploaded_at, size = excluded.size,
			read_back = CASE WHEN chunk_uploads.read_back = 1 OR excluded.read_back = 1 THEN 1 ELSE 0 END`,
			u.Project, u.State, u.Chunk, nanos(u.At), u.Size, boolInt(u.ReadBack))
		if err != nil {
			return fmt.Errorf("record upload of chunk %s: %w", u.Chunk, err)
		}
		return nil
	})
	return again, err
}

// ProjectUsage is what counts against a project's upload quota: the
// compressed bytes of the distinct chunks its states uploaded and still
// hold (uploaded within the GC grace period, or referenced by a version of
// the state they were uploaded to). A chunk counts once per project.
func (s *Store) ProjectUsage(ctx context.Context, project string) (int64, error) {
	return projectUsage(ctx, s.db, project)
}

func projectUsage(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, project string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM (SELECT chunk, MAX(size) AS size FROM chunk_uploads WHERE project = $1 GROUP BY chunk) u`,
		project).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("usage of project %s: %w", project, err)
	}
	return n, nil
}

// ChunkUploadedTo reports whether the chunk was uploaded to project/state
// for reading back (and not pruned since).
func (s *Store) ChunkUploadedTo(ctx context.Context, project, state, chunk string) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM chunk_uploads WHERE project = $1 AND state = $2 AND chunk = $3 AND read_back = 1`,
		project, state, chunk).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check uploaded chunk: %w", err)
	}
	return true, nil
}

// ChunksUploadedForReadBack returns which of chunks were uploaded to
// project/state for reading back (ChunkUploadedTo for a batch).
func (s *Store) ChunksUploadedForReadBack(ctx context.Context, project, state string, chunks []string) (map[string]bool, error) {
	return s.chunksIn(ctx, s.db, `SELECT chunk FROM chunk_uploads WHERE project = $1 AND state = $2 AND read_back = 1 AND chunk IN (%s)`,
		[]any{project, state}, chunks)
}

// ChunksHeldBy returns which of chunks project/state holds: uploaded to it
// (and not pruned since) or referenced by one of its versions. A commit to
// the state may name these without uploading them again.
func (s *Store) ChunksHeldBy(ctx context.Context, project, state string, chunks []string) (map[string]bool, error) {
	return s.chunksIn(ctx, s.db, `SELECT chunk FROM chunk_uploads WHERE project = $1 AND state = $2 AND chunk IN (%[1]s)
		UNION SELECT c.chunk FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
		WHERE v.project = $1 AND v.state = $2 AND c.chunk IN (%[1]s)`, []any{project, state}, chunks)
}

// StateRef names a state.
type StateRef struct{ Project, State string }

// ChunkHolders returns, for each of chunks that a live version references,
// the states whose versions reference it.
func (s *Store) ChunkHolders(ctx context.Context, chunks []string) (map[string][]StateRef, error) {
	out := map[string][]StateRef{}
	err := forBatches(chunks, func(part []string) error {
		args, ph := inList(nil, part)
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT c.chunk, v.project, v.state FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
			WHERE c.chunk IN (`+ph+`) ORDER BY v.project, v.state`, args...)
		if err != nil {
			return fmt.Errorf("find versions referencing chunks: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			var r StateRef
			if err := rows.Scan(&c, &r.Project, &r.State); err != nil {
				return fmt.Errorf("find versions referencing chunks: %w", err)
			}
			out[c] = append(out[c], r)
		}
		return rows.Err()
	})
	return out, err
}

// PruneUploads forgets uploads older than before that no version of the
// state they were uploaded to references: garbage collection may delete
// their chunks from then on anyway, and a commit naming them uploads them
// again. Uploads a version of their state references stay, so they keep
// counting towards the project's quota.
func (s *Store) PruneUploads(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM chunk_uploads WHERE uploaded_at < $1 AND NOT EXISTS (
		SELECT 1 FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
		WHERE c.chunk = chunk_uploads.chunk AND v.project = chunk_uploads.project AND v.state = chunk_uploads.state)`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("prune chunk uploads: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune chunk uploads: %w", err)
	}
	return n, nil
}
