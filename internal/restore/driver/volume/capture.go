// Package volume captures a directory as a tar stream plus a file index and
// restores it into a directory through a staging directory on the same
// filesystem, writing only the files that differ.
package volume

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Format is the component format this driver writes and reads.
const Format = "tar"

// Reserved names at the top of a target: never captured, never deleted.
const (
	MarkerName    = ".unikube-state.json"
	stagingPrefix = ".unikube-staging-"
)

// Target options understood by the volume driver.
const (
	// OptOwner maps every restored entry to "uid:gid" (for targets whose
	// workload runs as another user).
	OptOwner = "owner"
	// OptVerify set to "true" hashes every existing file instead of trusting
	// size+mtime of files unchanged since the last apply, and checks each
	// written file against the index's sha256.
	OptVerify = "verify"
	// OptKeepSetID set to "true" restores the setuid and setgid bits of
	// files the index holds. By default they are cleared: a package must
	// not plant a setuid-root program (or a setgid one) in a volume that a
	// workload might run. Directories keep setgid (new entries inherit
	// the directory's group, as Kubernetes' fsGroup relies on; it runs
	// nothing) and lose setuid (meaningless there); the sticky bit is
	// kept: it only restricts who may delete in a directory.
	OptKeepSetID = "keep_setid"
)

// sysStat is what capture reads of an entry beyond fs.FileInfo, where the
// platform has it (statOf, in the sys_*.go files).
type sysStat struct {
	uid, gid int
	mode     uint32 // permission bits with setuid, setgid, sticky
	nlink    uint64
	dev, ino uint64
}

// Driver is the volume driver. The zero value is ready to use; it must not
// be copied after first use.
type Driver struct {
	// planned holds the diffs of recent Plans by target and component,
	// which a Restore of the same component onto the same target right
	// after reuses instead of examining every entry again (half the cost of
	// a no-op re-apply).
	mu      sync.Mutex
	planned map[string]*plannedDiff
}

// New returns the volume driver.
func New() *Driver { return &Driver{} }

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindVolume }

// TargetOptions implements driver.OptionLister.
func (*Driver) TargetOptions() []string { return []string{OptOwner, OptVerify, OptKeepSetID} }

func reserved(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return first == MarkerName || strings.HasPrefix(first, stagingPrefix)
}

type devIno struct{ dev, ino uint64 }

// Capture implements driver.Driver: it walks the directory in lexical order
// and writes a PAX tar stream, recording for every regular file the offset of
// its content in the stream.
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	root, ok := driver.LocalPath(src.URL)
	if !ok {
		return driver.CaptureResult{}, fmt.Errorf("volume capture needs a directory, got %s", driver.Redact(src.URL))
	}
	st, err := os.Stat(root)
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture: %w", err)
	}
	name := src.Option("component", filepath.Base(root))
	if st.Mode().IsRegular() && IsTar(root) {
		return captureTar(ctx, root, w, p, name)
	}
	if !st.IsDir() {
		return driver.CaptureResult{}, fmt.Errorf("volume capture: %s is neither a directory nor a tar archive", root)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &driver.CountingWriter{W: bw}
	tw := tar.NewWriter(cw)
	marker, _ := w.(statepkg.CutMarker)
	var (
		files   []statepkg.FileEntry
		seen    = map[devIno]string{}
		skipped int
		buf     = make([]byte, 1<<20)
		total   int64
	)
	err = filepath.WalkDir(root, func(full string, de fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if reserved(rel) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		sys, hasSys := statOf(fi)
		e := statepkg.FileEntry{Path: rel, MTime: fi.ModTime().UTC(), Mode: uint32(fi.Mode().Perm())}
		if hasSys {
			e.UID, e.GID = sys.uid, sys.gid
			e.Mode = sys.mode
		}
		hdr := &tar.Header{Name: rel, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, ModTime: e.MTime, Format: tar.FormatPAX}
		switch {
		case fi.Mode().IsDir():
			e.Type = statepkg.FileDir
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = statepkg.FileSymlink
			if e.Linkname, err = os.Readlink(full); err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Linkname
		case fi.Mode().IsRegular():
			if hasSys && sys.nlink > 1 {
				key := devIno{sys.dev, sys.ino}
				if first, ok := seen[key]; ok {
					e.Type, e.Linkname = statepkg.FileHardlink, first
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					break
				}
				seen[key] = rel
			}
			e.Type, e.Size = statepkg.FileRegular, fi.Size()
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		default:
			skipped++ // sockets, FIFOs and devices are not data
			return nil
		}
		if err := markEntry(tw, cw, marker, rel); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if e.Type == statepkg.FileRegular {
			// The header is written through to cw, so cw.N is where the
			// content starts in the stream.
			e.DataOffset = cw.N
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			h := sha256.New()
			n, err := io.CopyBuffer(io.MultiWriter(tw, h), io.LimitReader(f, e.Size), buf)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if n != e.Size {
				return fmt.Errorf("%s: file shrank while reading (%d of %d bytes); capture a quiesced volume", rel, n, e.Size)
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
			total += n
		}
		files = append(files, e)
		p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Files: 1, Bytes: e.Size})
		return nil
	})
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", root, err)
	}
	if err := bw.Flush(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", root, err)
	}
	meta := map[string]string{
		"files":      strconv.Itoa(len(files)),
		"dataBytes":  strconv.FormatInt(total, 10),
		"capturedAt": time.Now().UTC().Format(time.RFC3339),
	}
	if skipped > 0 {
		meta["skippedSpecialFiles"] = strconv.Itoa(skipped)
	}
	return driver.CaptureResult{Format: Format, Meta: meta, Files: files}, nil
}

// markEntry tells the chunker, when it listens (marker not nil), that the
// tar entry for path starts at the current stream offset, so that chunks
// end between files rather than inside their neighbours: a changed small
// file then costs an apply about one small chunk. The previous entry's
// padding is written first, so the mark lands on the entry's first header
// byte.
func markEntry(tw *tar.Writer, cw *driver.CountingWriter, marker statepkg.CutMarker, path string) error {
	if marker == nil {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	marker.MarkCut(cw.N, path)
	return nil
}
