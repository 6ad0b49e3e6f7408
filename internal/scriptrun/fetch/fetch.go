// Package fetch puts one component of a version into a directory: the
// init container of a `script` component's Job runs it (through
// `unikube-agent fetch`) so the script finds the data at /unikube/data. A
// component with a file index (a tar stream, e.g. captured from a
// directory) is unpacked; any other stream is written to one file named
// after the component. Every chunk is verified before it is written.
package fetch

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Summary says what was written.
type Summary struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// File is the single file written for a stream without a file index.
	File string `json:"file,omitempty"`
}

// IsTar reports whether the component's stream is a tar archive.
func IsTar(c statepkg.Component) bool {
	return len(c.Files) > 0 || c.Format == "tar"
}

// Component writes component c of a version, read through store, into dest.
func Component(ctx context.Context, store statepkg.ChunkStore, c statepkg.Component, dest string) (Summary, error) {
	stream := c
	stream.Files = nil
	r := statepkg.OpenComponent(ctx, store, stream, statepkg.ReadOptions{})
	defer r.Close()
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if IsTar(c) {
		return untar(r, dest)
	}
	name := filepath.Join(dest, c.Name)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", name, err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Summary{}, fmt.Errorf("write %s: %w", name, err)
	}
	return Summary{Files: 1, Bytes: n, File: name}, nil
}

// untar unpacks r into dest; entries leaving dest are refused.
func untar(r io.Reader, dest string) (Summary, error) {
	var s Summary
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("read tar stream: %w", err)
		}
		rel, err := clean(h.Name)
		if err != nil {
			return s, err
		}
		if rel == "" {
			continue // the root itself
		}
		p := filepath.Join(dest, filepath.FromSlash(rel))
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode|0o700); err != nil {
				return s, fmt.Errorf("create %s: %w", rel, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return s, fmt.Errorf("create parent of %s: %w", rel, err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o600)
			if err != nil {
				return s, fmt.Errorf("create %s: %w", rel, err)
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return s, fmt.Errorf("write %s: %w", rel, err)
			}
			s.Files++
			s.Bytes += n
		case tar.TypeSymlink:
			target := h.Linkname
			if path.IsAbs(target) {
				return s, fmt.Errorf("symlink %s points outside the data (%s)", rel, target)
			}
			if _, err := clean(path.Join(path.Dir(rel), target)); err != nil {
				return s, fmt.Errorf("symlink %s: %w", rel, err)
			}
			if err := os.Symlink(target, p); err != nil {
				return s, fmt.Errorf("symlink %s: %w", rel, err)
			}
		case tar.TypeLink:
			src, err := clean(h.Linkname)
			if err != nil {
				return s, fmt.Errorf("hardlink %s: %w", rel, err)
			}
			if err := os.Link(filepath.Join(dest, filepath.FromSlash(src)), p); err != nil {
				return s, fmt.Errorf("hardlink %s: %w", rel, err)
			}
		default:
			// Devices, fifos: not data a script needs.
		}
	}
}

// clean returns a slash path relative to the root, or an error when the
// name leaves it.
func clean(name string) (string, error) {
	c := path.Clean("/" + strings.TrimPrefix(name, "./"))
	if strings.Contains(name, "..") {
		// "/a/../../x" cleans to "/x": compare with a plain join to catch it.
		for _, part := range strings.Split(name, "/") {
			if part == ".." {
				return "", fmt.Errorf("tar entry %q leaves the data directory", name)
			}
		}
	}
	return strings.TrimPrefix(c, "/"), nil
}
