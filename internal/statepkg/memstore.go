package statepkg

import (
	"context"
	"fmt"
	"sync"
)

// MemoryStore is a ChunkStore held in memory, for tests and small tools. It
// is safe for concurrent use.
type MemoryStore struct {
	mu     sync.RWMutex
	chunks map[string][]byte
}

var (
	_ ChunkStore   = (*MemoryStore)(nil)
	_ ChunkStatter = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{chunks: make(map[string][]byte)}
}

// Has reports whether the chunk is stored.
func (s *MemoryStore) Has(ctx context.Context, digest string) (bool, error) {
	if err := checkKey(ctx, digest); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.chunks[digest]
	return ok, nil
}

// Put stores a copy of compressed under digest; storing a digest again is a
// no-op.
func (s *MemoryStore) Put(ctx context.Context, digest string, compressed []byte) error {
	if err := checkKey(ctx, digest); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chunks[digest]; !ok {
		s.chunks[digest] = append([]byte(nil), compressed...)
	}
	return nil
}

// Get returns a copy of the chunk's compressed bytes.
func (s *MemoryStore) Get(ctx context.Context, digest string) ([]byte, error) {
	if err := checkKey(ctx, digest); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.chunks[digest]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	return append([]byte(nil), b...), nil
}

// StoredSize returns the compressed size of a stored chunk.
func (s *MemoryStore) StoredSize(ctx context.Context, digest string) (int64, error) {
	if err := checkKey(ctx, digest); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.chunks[digest]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	return int64(len(b)), nil
}

// Delete removes a chunk; deleting an absent chunk is a no-op.
func (s *MemoryStore) Delete(ctx context.Context, digest string) error {
	if err := checkKey(ctx, digest); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.chunks, digest)
	return nil
}

// Len returns the number of stored chunks.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.chunks)
}

// checkKey is the common argument check of store methods.
func checkKey(ctx context.Context, digest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := ParseDigest(digest)
	return err
}
