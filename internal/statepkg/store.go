package statepkg

import "context"

// ChunkStore holds compressed chunks keyed by the digest of their uncompressed
// bytes ("sha256:<hex>"). Implementations: MemoryStore, DirStore here; the
// platform's filesystem/S3 stores and the HTTP client elsewhere.
type ChunkStore interface {
	// Has reports whether the chunk is already stored.
	Has(ctx context.Context, digest string) (bool, error)
	// Put stores the zstd-compressed bytes of a chunk. It is idempotent. It
	// must not keep compressed after it returns: writers reuse the buffer.
	Put(ctx context.Context, digest string, compressed []byte) error
	// Get returns the zstd-compressed bytes of a chunk, or an error wrapping
	// ErrMissingChunk when it is not stored.
	Get(ctx context.Context, digest string) ([]byte, error)
}

// ChunkStatter is an optional ChunkStore extension for stores that can tell a
// stored chunk's compressed size without fetching it (a stat, a HEAD). When
// the store has it, WriteComponent records known chunks' sizes without
// compressing them again, which makes re-capturing mostly unchanged data
// much cheaper.
type ChunkStatter interface {
	// StoredSize returns the compressed size of a stored chunk, or an error
	// wrapping ErrMissingChunk when it is not stored.
	StoredSize(ctx context.Context, digest string) (int64, error)
}

// ChunkReaderInto is an optional ChunkStore extension for stores that can
// read a chunk into a caller's buffer: readers reuse one buffer per chunk in
// flight instead of allocating (and zeroing, and collecting) one per chunk.
type ChunkReaderInto interface {
	// GetInto is Get reading into buf's capacity when it is large enough;
	// the returned slice may alias buf.
	GetInto(ctx context.Context, digest string, buf []byte) ([]byte, error)
}

// getChunk fetches a chunk, into buf when the store can.
func getChunk(ctx context.Context, store ChunkStore, digest string, buf []byte) ([]byte, error) {
	if r, ok := store.(ChunkReaderInto); ok {
		return r.GetInto(ctx, digest, buf)
	}
	return store.Get(ctx, digest)
}

// ChunkBatchGetter is an optional ChunkStore extension for stores where a
// request costs more than a small chunk's bytes (the platform over HTTP):
// readers fetch runs of chunks with one call instead of one Get per chunk.
type ChunkBatchGetter interface {
	// GetBatch fetches the chunks named by digests and calls fn with each
	// one's compressed bytes, in the order given, from the calling
	// goroutine; fn must not keep the bytes after it returns. An error of fn
	// stops the batch and is returned as it is. A chunk that is not stored
	// gives an error wrapping ErrMissingChunk, not necessarily naming which
	// (readers find out with Get).
	GetBatch(ctx context.Context, digests []string, fn func(i int, compressed []byte) error) error
}
