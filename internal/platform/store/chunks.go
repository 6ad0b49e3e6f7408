package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ChunksInState returns which of chunks a live version of the state
// references (one query for a whole batch download).
func (s *Store) ChunksInState(ctx context.Context, project, state string, chunks []string) (map[string]bool, error) {
	return s.chunksIn(ctx, `SELECT DISTINCT c.chunk FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
		WHERE v.project = $1 AND v.state = $2 AND c.chunk IN (%s)`, []any{project, state}, chunks)
}

// ChunksInManifest returns which of chunks the manifest references.
func (s *Store) ChunksInManifest(ctx context.Context, manifest string, chunks []string) (map[string]bool, error) {
	return s.chunksIn(ctx, `SELECT chunk FROM manifest_chunks WHERE manifest = $1 AND chunk IN (%s)`, []any{manifest}, chunks)
}

// chunksIn runs q with the chunk list as the IN (...) set. The statement is
// not cached: its placeholder count varies with the batch.
func (s *Store) chunksIn(ctx context.Context, q string, args []any, chunks []string) (map[string]bool, error) {
	found := make(map[string]bool, len(chunks))
	if len(chunks) == 0 {
		return found, nil
	}
	ph := make([]string, len(chunks))
	for i, c := range chunks {
		args = append(args, c)
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(q, strings.Join(ph, ", ")), args...)
	if err != nil {
		return nil, fmt.Errorf("check chunks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("check chunks: %w", err)
		}
		found[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check chunks: %w", err)
	}
	return found, nil
}
