package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FS stores chunks as files root/sha256/ab/<hex>. Writes go to root/tmp,
// are fsynced, then renamed into place, so a crash never leaves a partial
// chunk under its final name.
type FS struct {
	root string
}

// NewFS opens (creating) a filesystem store at root.
func NewFS(root string) (*FS, error) {
	for _, d := range []string{root, filepath.Join(root, "sha256"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create chunk store %s: %w", d, err)
		}
	}
	return &FS{root: root}, nil
}

func (f *FS) String() string { return "file://" + f.root }

func (f *FS) path(digest string) (string, error) {
	h, err := hexOf(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(f.root, "sha256", h[:2], h), nil
}

// Has reports whether the chunk file exists.
func (f *FS) Has(_ context.Context, digest string) (bool, error) {
	p, err := f.path(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat chunk: %w", err)
	}
	return true, nil
}

// Size returns a stored chunk's size without opening it (batch downloads
// add up a response's length first, so they can send files with sendfile).
func (f *FS) Size(_ context.Context, digest string) (int64, error) {
	p, err := f.path(digest)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat chunk: %w", err)
	}
	return st.Size(), nil
}

// Put writes the chunk atomically; an existing chunk is left as is.
func (f *FS) Put(ctx context.Context, digest string, data []byte) error {
	p, err := f.path(digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Join(f.root, "tmp"), "put-*")
	if err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store chunk: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("store chunk: %w", err)
	}
	done = true
	// fsync the directory so the rename itself survives a crash.
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
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
func (f *FS) Open(_ context.Context, digest string) (Object, error) {
	p, err := f.path(digest)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open chunk: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open chunk: %w", err)
	}
	return &fsObject{f: fh, info: Info{Digest: digest, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

// Delete removes a chunk; a missing chunk is not an error.
func (f *FS) Delete(_ context.Context, digest string) error {
	p, err := f.path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete chunk: %w", err)
	}
	return nil
}

// Walk lists stored chunks.
func (f *FS) Walk(ctx context.Context, fn func(Info) error) error {
	base := filepath.Join(f.root, "sha256")
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if len(name) != 64 || strings.HasPrefix(name, ".") {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(Info{Digest: "sha256:" + name, Size: st.Size(), ModTime: st.ModTime()})
	})
}

// Ping checks the store directory is writable.
func (f *FS) Ping(_ context.Context) error {
	tmp, err := os.CreateTemp(filepath.Join(f.root, "tmp"), "ping-*")
	if err != nil {
		return fmt.Errorf("chunk store not writable: %w", err)
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

// CleanTemp removes leftovers of writes interrupted by a crash.
func (f *FS) CleanTemp() error {
	entries, err := os.ReadDir(filepath.Join(f.root, "tmp"))
	if err != nil {
		return fmt.Errorf("clean chunk temp dir: %w", err)
	}
	for _, e := range entries {
		_ = os.Remove(filepath.Join(f.root, "tmp", e.Name()))
	}
	return nil
}
