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
	return s.chunksIn(ctx, s.db, `SELECT DISTINCT c.chunk FROM manifest_chunks c JOIN versions v ON v.digest = c.manifest
		WHERE v.project = $1 AND v.state = $2 AND c.chunk IN (%s)`, []any{project, state}, chunks)
}

// ChunksInManifest returns which of chunks the manifest references.
func (s *Store) ChunksInManifest(ctx context.Context, manifest string, chunks []string) (map[string]bool, error) {
	return s.chunksIn(ctx, s.db, `SELECT chunk FROM manifest_chunks WHERE manifest = $1 AND chunk IN (%s)`, []any{manifest}, chunks)
}

// inBatch bounds the placeholders of one IN (...) list: SQLite and
// PostgreSQL both limit the parameters of a statement.
const inBatch = 500

// forBatches calls fn with consecutive slices of at most inBatch items.
func forBatches(items []string, fn func([]string) error) error {
	for len(items) > 0 {
		n := min(len(items), inBatch)
		if err := fn(items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// inList appends items to args and returns the placeholder list naming them.
func inList(args []any, items []string) ([]any, string) {
	ph := make([]string, len(items))
	for i, c := range items {
		args = append(args, c)
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	return args, strings.Join(ph, ", ")
}

// chunksIn runs q, in batches, with the chunk list as the IN (...) set
// (every %[1]s or %s of q) and returns the chunks of the first column. The
// statement is not cached: its placeholder count varies with the batch.
func (s *Store) chunksIn(ctx context.Context, db execQuerier, q string, fixed []any, chunks []string) (map[string]bool, error) {
	found := make(map[string]bool, len(chunks))
	err := forBatches(chunks, func(part []string) error {
		args, ph := inList(append([]any(nil), fixed...), part)
		rows, err := db.QueryContext(ctx, fmt.Sprintf(q, ph), args...)
		if err != nil {
			return fmt.Errorf("check chunks: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return fmt.Errorf("check chunks: %w", err)
			}
			found[c] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check chunks: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}
