package blob

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// FS stores chunks in a directory in the one on-disk chunk layout,
// statepkg.DirStore's (root/sha256/ab/<hex>, writes through root/tmp,
// fsynced and renamed into place, so a crash never leaves a partial chunk
// under its final name). FS adds what a server needs: open files to
// sendfile, a walk for garbage collection, a readiness check.
type FS struct {
	ds *statepkg.DirStore
}

// NewFS opens (creating) a filesystem store at root.
func NewFS(root string) (*FS, error) {
	ds, err := statepkg.NewDirStore(root)
	if err != nil {
		return nil, fmt.Errorf("create chunk store %s: %w", root, err)
	}
	return &FS{ds: ds}, nil
}

func (f *FS) String() string { return "file://" + f.ds.Dir() }

// notFound turns the DirStore's missing chunk into this package's.
func notFound(digest string, err error) error {
	if errors.Is(err, statepkg.ErrMissingChunk) {
		return fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	return err
}

// Has reports whether the chunk file exists.
func (f *FS) Has(ctx context.Context, digest string) (bool, error) {
	return f.ds.Has(ctx, digest)
}

// Size returns a stored chunk's size without opening it (batch downloads
// add up a response's length first, so they can send files with sendfile).
func (f *FS) Size(ctx context.Context, digest string) (int64, error) {
	n, err := f.ds.StoredSize(ctx, digest)
	return n, notFound(digest, err)
}

// Put writes the chunk atomically; an existing chunk is left as is.
func (f *FS) Put(ctx context.Context, digest string, data []byte) error {
	return f.ds.Put(ctx, digest, data)
}

type fsObject struct {
	f    *os.File
	info Info
}

func (o *fsObject) Read(p []byte) (int, error)                { return o.f.Read(p) }
func (o *fsObject) Seek(off int64, whence int) (int64, error) { return o.f.Seek(off, whence) }
func (o *fsObject) Close() error                              { return o.f.Close() }
func (o *fsObject) Info() Info                                { return o.info }

// File exposes the open file, so an HTTP server can sendfile it.
func (o *fsObject) File() *os.File { return o.f }

// Open opens a chunk for reading.
func (f *FS) Open(ctx context.Context, digest string) (Object, error) {
	fh, err := f.ds.Open(ctx, digest)
	if err != nil {
		return nil, notFound(digest, err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open chunk: %w", err)
	}
	return &fsObject{f: fh, info: Info{Digest: digest, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

// Delete removes a chunk; a missing chunk is not an error.
func (f *FS) Delete(ctx context.Context, digest string) error {
	return f.ds.Delete(ctx, digest)
}

// Walk lists stored chunks.
func (f *FS) Walk(ctx context.Context, fn func(Info) error) error {
	return f.ds.Walk(ctx, func(c statepkg.StoredChunk) error {
		return fn(Info{Digest: c.Digest, Size: c.Size, ModTime: c.ModTime})
	})
}

// Ping checks the store directory is writable.
func (f *FS) Ping(_ context.Context) error { return f.ds.Ping() }

// CleanTemp removes leftovers of writes interrupted by a crash.
func (f *FS) CleanTemp() error { return f.ds.CleanTemp() }
