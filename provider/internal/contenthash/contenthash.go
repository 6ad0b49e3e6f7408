// Package contenthash computes, at plan time, a digest of the local sources
// of a named state's components (a dump file, a directory), so a plan shows
// a new version exactly when the content changed. It hashes what a capture
// would store (paths, types, permission bits, contents, link targets) and
// ignores what it would not (modification times, owners), so a fresh checkout
// of the same files gives the same digest.
package contenthash

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// version is mixed into every digest, so a change to what is hashed changes
// every digest instead of colliding with old ones.
const version = "unikube-content-hash-v1"

// Source is one component's source.
type Source struct {
	Name string // component name
	Kind string // component kind
	Path string // a file or a directory
	// Live marks a live service (a database URL): its content cannot be
	// read at plan time, so only the fact that it is live is hashed and a
	// trigger decides when it is captured again.
	Live bool
}

// Digest returns "sha256:<hex>" over the sources in order and trigger (a
// user-chosen value whose change asks for a new capture; "" adds nothing).
// It reads every local file in full and stops early when ctx is cancelled.
func Digest(ctx context.Context, sources []Source, trigger string) (string, error) {
	h := sha256.New()
	writeField(h, version)
	for _, s := range sources {
		writeField(h, s.Name)
		writeField(h, s.Kind)
		if s.Live {
			writeField(h, "live")
			continue
		}
		if err := hashPath(ctx, h, s.Path); err != nil {
			return "", fmt.Errorf("component %q: %w", s.Name, err)
		}
	}
	if trigger != "" {
		writeField(h, "trigger")
		writeField(h, trigger)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// hashPath hashes a file, or a directory tree in lexical order.
func hashPath(ctx context.Context, h hash.Hash, root string) error {
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("source %s: %w", root, err)
	}
	if !info.IsDir() {
		writeField(h, "file")
		return hashFile(ctx, h, root)
	}
	writeField(h, "dir")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walking %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("relative path of %s: %w", p, err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		writeField(h, filepath.ToSlash(rel))
		writeField(h, fmt.Sprintf("%o", info.Mode().Perm()|info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
		switch {
		case d.IsDir():
			writeField(h, "dir")
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("reading link %s: %w", p, err)
			}
			writeField(h, "symlink")
			writeField(h, target)
		case d.Type().IsRegular():
			writeField(h, "file")
			return hashFile(ctx, h, p)
		default:
			// Sockets, devices and pipes are not captured.
			writeField(h, "other")
		}
		return nil
	})
}

// hashFile writes the length and sha256 of a file's content.
func hashFile(ctx context.Context, h hash.Hash, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("opening %s: %w", p, err)
	}
	defer f.Close()
	fh := sha256.New()
	n, err := io.Copy(fh, &ctxReader{ctx: ctx, r: f})
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	writeField(h, fmt.Sprintf("%d", n))
	writeField(h, hex.EncodeToString(fh.Sum(nil)))
	return nil
}

// writeField writes a length-prefixed field so that no two different
// sequences of fields hash the same.
func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// ctxReader stops a long read when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
