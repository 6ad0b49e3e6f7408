package statepkg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirStore is a ChunkStore in a local directory: each chunk is a file
// DIR/sha256/ab/<hex>, where ab are the first two hex digits. Writes go to a
// temporary file that is synced and renamed into place, so a reader never
// sees a partial chunk and a crash leaves at worst a stray temporary file.
// It is safe for concurrent use, also by several processes.
//
// DirStore does not check that stored bytes match their digest; readers do
// (DecodeChunk), and servers accepting uploads should too.
type DirStore struct {
	dir string
}

var (
	_ ChunkStore      = (*DirStore)(nil)
	_ ChunkStatter    = (*DirStore)(nil)
	_ ChunkReaderInto = (*DirStore)(nil)
)

// NewDirStore returns a DirStore rooted at dir, creating it if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, errors.New("chunk store directory: empty path")
	}
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("creating chunk store directory: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

// Dir returns the store's root directory.
func (s *DirStore) Dir() string { return s.dir }

// Path returns the file that holds (or would hold) a chunk.
func (s *DirStore) Path(digest string) (string, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "sha256", h[:2], h), nil
}

func (s *DirStore) path(ctx context.Context, digest string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return s.Path(digest)
}

// Has reports whether the chunk's file exists.
func (s *DirStore) Has(ctx context.Context, digest string) (bool, error) {
	p, err := s.path(ctx, digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("checking chunk %s: %w", digest, err)
}

// StoredSize returns the size of the chunk's file.
func (s *DirStore) StoredSize(ctx context.Context, digest string) (int64, error) {
	p, err := s.path(ctx, digest)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	if err != nil {
		return 0, fmt.Errorf("checking chunk %s: %w", digest, err)
	}
	return fi.Size(), nil
}

// Put writes the chunk unless it is already there.
func (s *DirStore) Put(ctx context.Context, digest string, compressed []byte) error {
	p, err := s.path(ctx, digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(compressed); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	// CreateTemp makes the file 0600; chunks are not secret beyond what the
	// directory's own permissions say.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	// Concurrent writers of the same chunk write identical bytes, so the
	// last rename winning is harmless.
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	ok = true
	return syncDir(dir)
}

// Get reads the chunk's file.
func (s *DirStore) Get(ctx context.Context, digest string) ([]byte, error) {
	p, err := s.path(ctx, digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", digest, err)
	}
	return b, nil
}

// GetInto implements ChunkReaderInto.
func (s *DirStore) GetInto(ctx context.Context, digest string, buf []byte) ([]byte, error) {
	p, err := s.path(ctx, digest)
	if err != nil {
		return nil, err
	}
	b, err := readFileInto(p, buf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: chunk file %s: %v", ErrCorruptChunk, digest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", digest, err)
	}
	return b, nil
}

// maxChunkFile bounds the size of a chunk file read into memory: compressed
// chunks are never much larger than MaxChunkSize.
const maxChunkFile = 2 * MaxChunkSize

var errTooLarge = errors.New("file too large for a chunk")

// Delete removes a chunk; deleting an absent chunk is a no-op.
func (s *DirStore) Delete(ctx context.Context, digest string) error {
	p, err := s.path(ctx, digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting chunk %s: %w", digest, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
