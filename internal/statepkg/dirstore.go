package statepkg

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DirStore is a ChunkStore in a local directory, and the one on-disk
// chunk layout (the platform's filesystem blob store, internal/platform/blob,
// is a DirStore too):
//
//	DIR/sha256/ab/<hex>   a chunk, ab the first two hex digits of its digest
//	DIR/tmp/put-*         a write in progress
//
// A write goes to DIR/tmp, is synced and renamed into place, so a reader
// never sees a partial chunk and a crash leaves at worst a stray file in
// DIR/tmp (CleanTemp removes them). Directories are 0700 and files 0600:
// chunks hold application data. Directories written by older versions
// (0755/0644, temporary files .tmp-* beside the chunks, no DIR/tmp) are
// read as they are. It is safe for concurrent use, also by several
// processes.
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

// Names inside a DirStore's directory.
const (
	chunkDir    = "sha256"
	tempDir     = "tmp"
	tempPattern = "put-*"
	// legacyTempPrefix marks the temporary files older DirStores wrote
	// beside the chunks.
	legacyTempPrefix = ".tmp-"
)

// NewDirStore returns a DirStore rooted at dir, creating it if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, errors.New("chunk store directory: empty path")
	}
	for _, d := range []string{dir, filepath.Join(dir, chunkDir), filepath.Join(dir, tempDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating chunk store directory %s: %w", d, err)
		}
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
	return filepath.Join(s.dir, chunkDir, h[:2], h), nil
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, tempDir), tempPattern)
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
		return fmt.Errorf("storing chunk %s: fsync: %w", digest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing chunk %s: %w", digest, err)
	}
	if err := ctx.Err(); err != nil {
		return err
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

// Open opens a chunk's file for reading (a server can sendfile it).
func (s *DirStore) Open(ctx context.Context, digest string) (*os.File, error) {
	p, err := s.path(ctx, digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrMissingChunk, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("opening chunk %s: %w", digest, err)
	}
	return f, nil
}

// StoredChunk is a chunk file found by Walk.
type StoredChunk struct {
	Digest  string
	Size    int64
	ModTime time.Time
}

// Walk calls fn for every stored chunk, in no particular order. Files that
// are not chunks (temporary files, also older versions' .tmp-* beside the
// chunks) are passed over.
func (s *DirStore) Walk(ctx context.Context, fn func(StoredChunk) error) error {
	return filepath.WalkDir(filepath.Join(s.dir, chunkDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		h := d.Name()
		if !isChunkFile(p, h) {
			return nil
		}
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while walking
		}
		if err != nil {
			return err
		}
		return fn(StoredChunk{Digest: DigestPrefix + h, Size: st.Size(), ModTime: st.ModTime()})
	})
}

// isChunkFile reports whether the file p, named name, is a chunk: 64
// lowercase hex digits in the directory named by the first two.
func isChunkFile(p, name string) bool {
	return isLowerHex(name, sha256.Size*2) && filepath.Base(filepath.Dir(p)) == name[:2]
}

// Ping checks that the store can take writes.
func (s *DirStore) Ping() error {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, tempDir), "ping-*")
	if err != nil {
		return fmt.Errorf("chunk store %s not writable: %w", s.dir, err)
	}
	_ = tmp.Close()
	return os.Remove(tmp.Name())
}

// CleanTemp removes what writes interrupted by a crash left behind: the
// files in DIR/tmp and older versions' .tmp-* files beside the chunks. Call
// it when no other process writes to the store.
func (s *DirStore) CleanTemp() error {
	entries, err := os.ReadDir(filepath.Join(s.dir, tempDir))
	if err != nil {
		return fmt.Errorf("cleaning chunk temp dir: %w", err)
	}
	for _, e := range entries {
		_ = os.Remove(filepath.Join(s.dir, tempDir, e.Name()))
	}
	legacy, err := filepath.Glob(filepath.Join(s.dir, chunkDir, "??", legacyTempPrefix+"*"))
	if err != nil {
		return fmt.Errorf("cleaning chunk temp files: %w", err)
	}
	for _, p := range legacy {
		_ = os.Remove(p)
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
