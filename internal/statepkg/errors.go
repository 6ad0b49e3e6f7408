package statepkg

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is; the concrete errors
// returned wrap them with the details (which component, which chunk, what).
var (
	// ErrCorruptChunk: a chunk's bytes do not decompress or do not match its digest.
	ErrCorruptChunk = errors.New("corrupt chunk")
	// ErrMissingChunk: a chunk named by a manifest is not in the store.
	ErrMissingChunk = errors.New("missing chunk")
	// ErrTruncatedChunk: a chunk's compressed bytes end before the data does.
	ErrTruncatedChunk = errors.New("truncated chunk")
	// ErrUnsupportedSchema: a manifest's schemaVersion is not one this build reads.
	ErrUnsupportedSchema = errors.New("unsupported manifest schemaVersion")
	// ErrInvalidManifest: a manifest is malformed or inconsistent.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrInvalidRef: a reference, name, tag, tag expression or digest is malformed.
	ErrInvalidRef = errors.New("invalid reference")
	// ErrNoSuchVersion: no version matches a tag expression.
	ErrNoSuchVersion = errors.New("no such version")
)

// ChunkError reports a problem with one chunk of one component, so that a
// user can tell which piece of which service's data is damaged.
type ChunkError struct {
	Component string // component name
	Chunk     string // chunk digest, "sha256:<hex>"
	Offset    int64  // offset of the chunk in the component stream
	Err       error  // wraps ErrCorruptChunk, ErrMissingChunk, ErrTruncatedChunk or a store error
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("component %q: chunk %s at offset %d: %v", e.Component, e.Chunk, e.Offset, e.Err)
}

func (e *ChunkError) Unwrap() error { return e.Err }
