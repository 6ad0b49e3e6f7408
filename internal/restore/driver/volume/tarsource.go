package volume

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// IsTar reports whether the file at p starts like a tar archive.
func IsTar(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		return false
	}
	return string(b[257:262]) == "ustar"
}

// normalizeTarName turns a tar entry name into an index path, or says why
// it cannot be one.
func normalizeTarName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", refuse("tar entry %q has an absolute path", name)
	}
	n := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", refuse("tar entry %q leaves the target through ..", name)
		}
	}
	if n == "" || n == "." {
		return ".", nil
	}
	if err := validPath(n); err != nil {
		return "", err
	}
	return n, nil
}

// captureTar reads a tar file and re-emits it as a normalized tar stream
// with a file index. Entries that could escape the target, device files,
// FIFOs and sparse files are refused before anything is stored.
func captureTar(ctx context.Context, file string, w io.Writer, p driver.Progress, name string) (driver.CaptureResult, error) {
	f, err := os.Open(file)
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture: %w", err)
	}
	// Counted, so the end can be told from a cut: tar.Reader reports an
	// archive that stops between entries, without its end-of-archive
	// blocks, as a clean io.EOF.
	in := &driver.ProgressReader{R: bufio.NewReaderSize(f, 1<<20)}
	tr := tar.NewReader(in)
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &driver.CountingWriter{W: bw}
	tw := tar.NewWriter(cw)
	marker, _ := w.(statepkg.CutMarker)
	var files []statepkg.FileEntry
	types := map[string]string{}
	buf := make([]byte, 1<<20)
	ensureDir := func(dir string, mtime time.Time) error {
		var missing []string
		for d := dir; d != "."; d = path.Dir(d) {
			if t, ok := types[d]; ok {
				if t != statepkg.FileDir {
					return refuse("tar entry below %q, which is not a directory", d)
				}
				break
			}
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			d := missing[i]
			e := statepkg.FileEntry{Path: d, Type: statepkg.FileDir, Mode: 0o755, MTime: mtime}
			if err := markEntry(tw, cw, marker, d); err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
			types[d] = statepkg.FileDir
			files = append(files, e)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return driver.CaptureResult{}, err
		}
		before := in.N
		hdr, err := tr.Next()
		if err == io.EOF {
			// Next read the last entry's padding (< 512 bytes), then the
			// zero block(s) marking the end; without them the archive was
			// cut short.
			if in.N-before < 512 {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: the archive ends without its end-of-archive blocks: it is truncated (make it again)", file)
			}
			break
		}
		if err != nil {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: read tar: %w", file, err)
		}
		p0, err := normalizeTarName(hdr.Name)
		if err != nil {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
		}
		if p0 == "." {
			continue
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparseRecords(hdr) {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q is a sparse file (its size could expand far beyond the archive)", hdr.Name))
		}
		if hdr.Size < 0 || hdr.Size > fi.Size() {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q claims %d bytes but the archive is %d bytes", hdr.Name, hdr.Size, fi.Size()))
		}
		e := statepkg.FileEntry{Path: p0, Mode: uint32(hdr.Mode) & 0o7777, UID: hdr.Uid, GID: hdr.Gid, MTime: hdr.ModTime.UTC()}
		out := &tar.Header{Name: p0, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, ModTime: e.MTime, Format: tar.FormatPAX}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if types[p0] == statepkg.FileDir {
				continue // already implied by an earlier entry
			}
			e.Type, out.Typeflag, out.Name = statepkg.FileDir, tar.TypeDir, p0+"/"
		case tar.TypeReg: // tar.Reader reports old-style TypeRegA entries as TypeReg
			e.Type, e.Size, out.Typeflag, out.Size = statepkg.FileRegular, hdr.Size, tar.TypeReg, hdr.Size
		case tar.TypeSymlink:
			e.Type, e.Linkname, out.Typeflag, out.Linkname = statepkg.FileSymlink, hdr.Linkname, tar.TypeSymlink, hdr.Linkname
			if strings.HasPrefix(hdr.Linkname, "/") {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("symlink %q -> %q points outside the target", hdr.Name, hdr.Linkname))
			}
			if r := path.Join(path.Dir(p0), hdr.Linkname); r == ".." || strings.HasPrefix(r, "../") {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("symlink %q -> %q points outside the target", hdr.Name, hdr.Linkname))
			}
		case tar.TypeLink:
			target, err := normalizeTarName(hdr.Linkname)
			if err != nil || types[target] != statepkg.FileRegular {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("hardlink %q -> %q does not name a regular file earlier in the archive", hdr.Name, hdr.Linkname))
			}
			e.Type, e.Linkname, out.Typeflag, out.Linkname = statepkg.FileHardlink, target, tar.TypeLink, target
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q is a device file or FIFO", hdr.Name))
		default:
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q has unsupported type %q", hdr.Name, hdr.Typeflag))
		}
		if _, dup := types[p0]; dup {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q appears twice", hdr.Name))
		}
		if err := ensureDir(path.Dir(p0), e.MTime); err != nil {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
		}
		if err := markEntry(tw, cw, marker, p0); err != nil {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
		}
		if err := tw.WriteHeader(out); err != nil {
			return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
		}
		if e.Type == statepkg.FileRegular {
			e.DataOffset = cw.N
			h := sha256.New()
			n, err := io.CopyBuffer(io.MultiWriter(tw, h), io.LimitReader(tr, e.Size), buf)
			if err != nil {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %s: %w", file, hdr.Name, err)
			}
			if n != e.Size {
				return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, refuse("tar entry %q claims %d bytes but the archive ends after %d", hdr.Name, e.Size, n))
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
		types[p0] = e.Type
		files = append(files, e)
		p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Files: 1, Bytes: e.Size})
	}
	if err := tw.Close(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
	}
	if err := bw.Flush(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
	}
	// The index we built must pass the same checks a restore makes.
	if err := validateIndex(statepkg.Component{Size: cw.N, Files: files}); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("volume capture %s: %w", file, err)
	}
	return driver.CaptureResult{Format: Format, Files: files, Meta: map[string]string{"files": strconv.Itoa(len(files)), "source": "tar"}}, nil
}

func hasSparseRecords(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
