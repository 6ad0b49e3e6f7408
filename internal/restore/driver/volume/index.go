package volume

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// ErrHostileIndex marks an index that would write outside the target or
// claims data the stream does not hold.
var ErrHostileIndex = errors.New("refusing volume index")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrHostileIndex, fmt.Sprintf(format, args...))
}

// validPath reports why p is not a clean relative path inside the target.
func validPath(p string) error {
	switch {
	case p == "" || p == ".":
		return refuse("empty path")
	case strings.ContainsRune(p, 0):
		return refuse("path %q contains a NUL byte", p)
	case strings.HasPrefix(p, "/"):
		return refuse("absolute path %q", p)
	case path.Clean(p) != p:
		return refuse("path %q is not clean", p)
	case p == ".." || strings.HasPrefix(p, "../"):
		// A clean path holds ".." only as leading elements.
		return refuse("path %q leaves the target through ..", p)
	}
	if reserved(p) {
		return refuse("path %q uses a name reserved for unikube's marker or staging directory", p)
	}
	return nil
}

// validateIndex checks a volume component's file index before anything is
// written: clean relative paths in walk order, no device files, symlinks that
// stay inside, hardlinks to earlier files, and content ranges that lie inside
// the stream, in order and without overlap.
func validateIndex(c statepkg.Component) error {
	seen := make(map[string]string, len(c.Files))
	var end int64
	for i, e := range c.Files {
		if err := validPath(e.Path); err != nil {
			return err
		}
		if _, dup := seen[e.Path]; dup {
			return refuse("path %q appears twice", e.Path)
		}
		if dir := path.Dir(e.Path); dir != "." && seen[dir] != statepkg.FileDir {
			return refuse("entry %q: its parent %q is not a directory listed before it", e.Path, dir)
		}
		switch e.Type {
		case statepkg.FileDir:
		case statepkg.FileRegular:
			if e.Size < 0 || e.DataOffset < 0 {
				return refuse("entry %q has a negative size or offset", e.Path)
			}
			if e.Size > c.Size || e.DataOffset > c.Size-e.Size {
				return refuse("entry %q claims %d bytes at offset %d but the stream holds only %d bytes", e.Path, e.Size, e.DataOffset, c.Size)
			}
			if e.DataOffset < end {
				return refuse("entry %q overlaps the previous file's data", e.Path)
			}
			end = e.DataOffset + e.Size
			if len(e.SHA256) != 64 {
				return refuse("entry %q has no sha256", e.Path)
			}
		case statepkg.FileSymlink:
			if e.Linkname == "" || strings.HasPrefix(e.Linkname, "/") || strings.ContainsRune(e.Linkname, 0) {
				return refuse("symlink %q -> %q points outside the target (only relative links inside it are restored)", e.Path, e.Linkname)
			}
			resolved := path.Join(path.Dir(e.Path), e.Linkname)
			if resolved == ".." || strings.HasPrefix(resolved, "../") {
				return refuse("symlink %q -> %q points outside the target", e.Path, e.Linkname)
			}
		case statepkg.FileHardlink:
			if seen[e.Linkname] != statepkg.FileRegular {
				return refuse("hardlink %q -> %q does not name a regular file listed before it", e.Path, e.Linkname)
			}
		default:
			return refuse("entry %q has type %q: only files, directories, symlinks and hardlinks are restored (device files, FIFOs and sockets are refused)", e.Path, e.Type)
		}
		if e.Mode&^0o7777 != 0 {
			return refuse("entry %q has mode %o beyond permission bits", e.Path, e.Mode)
		}
		seen[e.Path] = e.Type
		_ = i
	}
	return nil
}
