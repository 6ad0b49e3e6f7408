// Package gc deletes chunks no version references any more.
package gc

import (
	"context"
	"fmt"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// Options tune a collection.
type Options struct {
	// Grace spares chunks stored more recently than this: they may belong
	// to an upload whose version is not committed yet.
	Grace  time.Duration
	DryRun bool
	Now    func() time.Time
}

// Result reports what a collection found and did: the API answers it as
// it is.
type Result = apitypes.GCResult

// One locked step checks up to batchSize candidates and deletes them until
// stepBudget has passed (deletes on S3 are round trips); what it did not
// get to goes into the next step. On SQLite every writer waits while a step
// runs, so steps stay well under its busy timeout.
//
// Between steps the collection pauses as long as the step took (at least
// minPause, at most maxPause): SQLite lets a waiting writer in only when
// its busy handler next polls, and a collection taking the lock again at
// once would starve it.
const (
	batchSize  = 256
	stepBudget = 100 * time.Millisecond
	minPause   = 10 * time.Millisecond
	maxPause   = 150 * time.Millisecond
)

// Run collects garbage without holding the store's GC lock for the walk:
// it lists the blob store against the referenced set read up front, then
// checks and deletes the candidates in short locked batches (see
// store.WithGCBatch), so commits, uploads and token writes go on meanwhile.
// A chunk is spared while younger than the grace period by its blob's age
// or by the time its last upload was recorded in the database (a re-upload
// of bytes the store already had leaves the blob old): the record is what a
// `gc` run in another process sees of a live server's in-flight uploads.
func Run(ctx context.Context, st *store.Store, blobs blob.Store, opts Options) (Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := Result{DryRun: opts.DryRun}
	if !opts.DryRun {
		if err := st.DropUnusedManifests(ctx); err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
	}
	refs, err := st.ReferencedChunks(ctx)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	res.Referenced = len(refs)
	cutoff := opts.Now().Add(-opts.Grace)
	var candidates []blob.Info
	err = blobs.Walk(ctx, func(in blob.Info) error {
		res.Scanned++
		if _, ok := refs[in.Digest]; ok {
			return nil
		}
		if in.ModTime.After(cutoff) {
			res.Young++
			return nil
		}
		candidates = append(candidates, in)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc: list chunks: %w", err)
	}
	size := make(map[string]int64, len(candidates))
	queue := make([]string, len(candidates))
	for i, in := range candidates {
		queue[i] = in.Digest
		size[in.Digest] = in.Size
	}
	for len(queue) > 0 {
		stepStart := time.Now()
		batch := queue[:min(batchSize, len(queue))]
		left := 0 // unchecked tail of batch, for the next step
		err := st.WithGCBatch(ctx, batch, cutoff, func(ctx context.Context, garbage []string) error {
			deadline := time.Now().Add(stepBudget)
			isGarbage := make(map[string]bool, len(garbage))
			for _, d := range garbage {
				isGarbage[d] = true
			}
			for i, d := range batch {
				if i > 0 && time.Now().After(deadline) {
					left = len(batch) - i
					return nil
				}
				if !isGarbage[d] {
					// Committed or uploaded since the walk: in use, or about to be.
					res.Young++
					continue
				}
				if !opts.DryRun {
					if err := blobs.Delete(ctx, d); err != nil {
						return err
					}
				}
				res.Deleted++
				res.DeletedBytes += size[d]
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		queue = queue[len(batch)-left:]
		if len(queue) > 0 {
			pause := min(max(time.Since(stepStart), minPause), maxPause)
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("gc: %w", ctx.Err())
			case <-time.After(pause):
			}
		}
	}
	// Uploads older than the grace period that no version of their state
	// references may have lost their chunks now: forget them too.
	if !opts.DryRun {
		if _, err := st.PruneUploads(ctx, cutoff); err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
	}
	return res, nil
}
