// Package gc deletes chunks no version references any more.
package gc

import (
	"context"
	"fmt"
	"time"

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

// Result reports what a collection found and did.
type Result struct {
	Scanned      int   `json:"scanned"`
	Referenced   int   `json:"referenced"`
	Young        int   `json:"young"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	DryRun       bool  `json:"dry_run"`
}

// batchSize is how many candidates one locked step checks and deletes: on
// SQLite every writer waits while a step runs, so steps stay short.
const batchSize = 256

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
	for len(candidates) > 0 {
		batch := candidates[:min(batchSize, len(candidates))]
		candidates = candidates[len(batch):]
		digests := make([]string, len(batch))
		size := make(map[string]int64, len(batch))
		for i, in := range batch {
			digests[i] = in.Digest
			size[in.Digest] = in.Size
		}
		err := st.WithGCBatch(ctx, digests, cutoff, func(ctx context.Context, garbage []string) error {
			// Committed or uploaded since the walk: in use, or about to be.
			res.Young += len(digests) - len(garbage)
			for _, d := range garbage {
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
