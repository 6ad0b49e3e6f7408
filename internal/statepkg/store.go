package statepkg

import "context"

// ChunkStore holds compressed chunks keyed by the digest of their uncompressed
// bytes ("sha256:<hex>"). Implementations: MemoryStore, DirStore here; the
// platform's filesystem/S3 stores and the HTTP client elsewhere.
type ChunkStore interface {
	// Has reports whether the chunk is already stored.
	Has(ctx context.Context, digest string) (bool, error)
	// Put stores the zstd-compressed bytes of a chunk. It is idempotent.
	Put(ctx context.Context, digest string, compressed []byte) error
	// Get returns the zstd-compressed bytes of a chunk, or an error wrapping
	// ErrMissingChunk when it is not stored.
	Get(ctx context.Context, digest string) ([]byte, error)
}
