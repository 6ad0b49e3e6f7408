package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordUpload remembers that the chunk was uploaded to project/state for
// reading back before a version references it (see ChunkUploadedTo).
func (s *Store) RecordUpload(ctx context.Context, project, state, chunk string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chunk_uploads (project, state, chunk, uploaded_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (project, state, chunk) DO UPDATE SET uploaded_at = excluded.uploaded_at`,
		project, state, chunk, nanos(at))
	if err != nil {
		return fmt.Errorf("record upload of chunk %s: %w", chunk, err)
	}
	return nil
}

// ChunkUploadedTo reports whether the chunk was uploaded to project/state
// for reading back (and not pruned since).
func (s *Store) ChunkUploadedTo(ctx context.Context, project, state, chunk string) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM chunk_uploads WHERE project = $1 AND state = $2 AND chunk = $3`,
		project, state, chunk).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check uploaded chunk: %w", err)
	}
	return true, nil
}

// PruneUploads forgets read-back uploads older than before: garbage
// collection may delete their chunks from then on anyway.
func (s *Store) PruneUploads(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM chunk_uploads WHERE uploaded_at < $1`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("prune chunk uploads: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune chunk uploads: %w", err)
	}
	return n, nil
}
