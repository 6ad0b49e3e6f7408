package volume

import (
	"errors"
	"fmt"
	"path"
	"slices"
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
// written: clean relative paths in walk order, each under a directory of the
// index (never under a symlink), no device files, symlinks that stay inside
// when resolved through the index's other symlinks, hardlinks to earlier
// regular files, and content ranges that lie inside the stream, in order and
// without overlap.
func validateIndex(c statepkg.Component) error {
	seen := make(map[string]string, len(c.Files))
	var end int64
	var links []int // indices of the symlinks, resolved once every entry is known
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
			links = append(links, i)
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
	}
	if len(links) == 0 {
		return nil
	}
	t := linkTree{links: make(map[string]string, len(links))}
	for _, i := range links {
		t.links[c.Files[i].Path] = c.Files[i].Linkname
	}
	for _, i := range links {
		e := c.Files[i]
		if err := t.check(e.Path, e.Linkname); err != nil {
			if esc := (*escapeError)(nil); errors.As(err, &esc) {
				return refuse("symlink %q -> %q points outside the target: %s", e.Path, e.Linkname, err)
			}
			return refuse("symlink %q -> %q: %s", e.Path, e.Linkname, err)
		}
	}
	return nil
}

// maxLinkHops is how many symlinks one resolution may follow, as Linux's
// MAXSYMLINKS: more is a loop (or a chain no path lookup completes).
const maxLinkHops = 40

// linkTree resolves link targets the way the kernel will once the index is
// restored: component by component, following the index's symlinks where a
// component names one (a link to "." or "..", or a chain of them, can climb
// out even when the target's text stays inside lexically). A component the
// index does not hold is taken as a directory, as a later mkdir by the
// workload would make it.
type linkTree struct {
	links map[string]string // symlink path -> its target
}

// escapeError says where a resolution left the target.
type escapeError struct {
	after string // the symlink followed last before the .. that left, if any
	abs   string // an absolute symlink followed
}

func (e *escapeError) Error() string {
	switch {
	case e.abs != "":
		return "it follows the absolute symlink " + e.abs
	case e.after != "":
		return "it climbs out through .. after the symlink " + e.after
	}
	return "it climbs out through .."
}

// check resolves the target of the symlink at p and says why it does not
// stay inside the target, or nil.
func (t linkTree) check(p, target string) error {
	hops := 0
	_, err := t.resolve(splitDir(path.Dir(p)), target, "", &hops)
	return err
}

func splitDir(dir string) []string {
	if dir == "." {
		return nil
	}
	return strings.Split(dir, "/")
}

// resolve walks target from the directory at (components from the top)
// and returns where it ends. after names the symlink followed last, for
// the error.
func (t linkTree) resolve(at []string, target, after string, hops *int) ([]string, error) {
	at = slices.Clone(at)
	for name := range strings.SplitSeq(target, "/") {
		switch name {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return nil, &escapeError{after: after}
			}
			at = at[:len(at)-1]
			continue
		}
		next := append(at, name)
		p := strings.Join(next, "/")
		link, ok := t.links[p]
		if !ok {
			at = next
			continue
		}
		if *hops++; *hops > maxLinkHops {
			return nil, fmt.Errorf("does not resolve: more than %d symlinks in a row (a loop)", maxLinkHops)
		}
		after = fmt.Sprintf("%q -> %q", p, link)
		if strings.HasPrefix(link, "/") {
			return nil, &escapeError{abs: after}
		}
		var err error
		if at, err = t.resolve(at, link, after, hops); err != nil {
			return nil, err
		}
	}
	return at, nil
}
