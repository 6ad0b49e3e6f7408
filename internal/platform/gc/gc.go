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

// Run collects garbage. It holds the store's GC lock, so no version can be
// committed between reading the referenced set and deleting: a commit either
// finished before (its chunks are referenced) or starts after (it re-checks
// that its chunks exist and reports missing ones as 409 for re-upload).
func Run(ctx context.Context, st *store.Store, blobs blob.Store, opts Options) (Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := Result{DryRun: opts.DryRun}
	err := st.WithGCLock(ctx, func(ctx context.Context, refs map[string]struct{}) error {
		res.Referenced = len(refs)
		cutoff := opts.Now().Add(-opts.Grace)
		var victims []blob.Info
		err := blobs.Walk(ctx, func(in blob.Info) error {
			res.Scanned++
			if _, ok := refs[in.Digest]; ok {
				return nil
			}
			if in.ModTime.After(cutoff) {
				res.Young++
				return nil
			}
			victims = append(victims, in)
			return nil
		})
		if err != nil {
			return fmt.Errorf("gc: list chunks: %w", err)
		}
		for _, v := range victims {
			if !opts.DryRun {
				if err := blobs.Delete(ctx, v.Digest); err != nil {
					return fmt.Errorf("gc: %w", err)
				}
			}
			res.Deleted++
			res.DeletedBytes += v.Size
		}
		return nil
	})
	// Read-back uploads older than the grace period may have lost their
	// chunks now: forget them too (outside the lock, which on SQLite holds
	// the write transaction).
	if err == nil && !opts.DryRun {
		if _, perr := st.PruneUploads(ctx, opts.Now().Add(-opts.Grace)); perr != nil {
			err = fmt.Errorf("gc: %w", perr)
		}
	}
	return res, err
}
