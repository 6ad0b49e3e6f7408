//go:build linux || darwin

package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// parallelMinAvg is the average file size from which files are written in
// parallel at their offsets (fetchFilesParallel) rather than in stream order
// by one writer (demux): with large files the writes dominate and are
// spread over every core; with small ones the per-file opens would be
// contended and the in-order writer with its cached directory is faster.
const parallelMinAvg = 1 << 20

func useParallel(files []statepkg.FileEntry, o options) bool {
	if o.verify {
		// Verification hashes each file's bytes in order.
		return false
	}
	var total int64
	for _, e := range files {
		total += e.Size
	}
	return total >= parallelMinAvg*int64(len(files))
}

// pfile is a file being written by several workers.
type pfile struct {
	e  statepkg.FileEntry
	mu sync.Mutex
	f  *os.File
	// failed is why creating the file failed: the other pieces of the file
	// report it too, rather than a second create's "file exists".
	failed error
	left   atomic.Int64 // bytes not yet written
}

// fetchFilesParallel writes the regular files (in stream order) into
// staging: workers fetch and verify the chunks covering them and write each
// chunk's pieces at their offsets; the worker writing a file's last bytes
// sets its owner, mode and mtime and closes it.
func fetchFilesParallel(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, src driver.ChunkVisitor, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	pf := make([]*pfile, 0, len(files))
	var done, files64 atomic.Int64
	countFile := func() {
		done.Add(1)
		if files64.Add(1)%64 == 0 {
			p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Files: 64})
		}
	}
	for _, e := range files {
		if e.Size == 0 {
			fd, err := w.open(e)
			if err == nil {
				err = w.finish(e, fd)
			}
			if err != nil {
				return 0, done.Load(), err
			}
			countFile()
			continue
		}
		if dir, _ := w.loc(e.Path); dir != "." {
			if err := w.mkdir(dir); err != nil {
				return 0, done.Load(), err
			}
		}
		f := &pfile{e: e}
		f.left.Store(e.Size)
		pf = append(pf, f)
	}
	w.close()
	sort.SliceStable(pf, func(i, j int) bool { return pf[i].e.DataOffset < pf[j].e.DataOffset })
	// The chunks covering the files, each once, in stream order.
	var chunks []statepkg.Chunk
	for _, f := range pf {
		for _, ch := range c.CoveringChunks(f.e.DataOffset, f.e.Size) {
			if len(chunks) == 0 || ch.Offset > chunks[len(chunks)-1].Offset {
				chunks = append(chunks, ch)
			}
		}
	}

	var written, pend atomic.Int64
	flush := func() {
		if n := pend.Swap(0); n > 0 {
			p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Bytes: n})
		}
	}
	err := src.VisitChunks(ctx, chunks, func(ch statepkg.Chunk, data []byte) error {
		end := ch.Offset + ch.Size
		k := sort.Search(len(pf), func(k int) bool { return pf[k].e.DataOffset+pf[k].e.Size > ch.Offset })
		for ; k < len(pf) && pf[k].e.DataOffset < end; k++ {
			f := pf[k]
			lo, hi := max(f.e.DataOffset, ch.Offset), min(f.e.DataOffset+f.e.Size, end)
			if hi <= lo {
				continue
			}
			if err := f.write(w, data[lo-ch.Offset:hi-ch.Offset], lo-f.e.DataOffset); err != nil {
				return err
			}
			if f.left.Add(lo-hi) == 0 {
				if err := f.finish(w); err != nil {
					return err
				}
				countFile()
			}
		}
		written.Add(ch.Size)
		if pend.Add(ch.Size) >= 1<<20 {
			flush()
		}
		return nil
	})
	flush()
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Files: files64.Load() % 64})
	for _, f := range pf {
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
		if err == nil && f.left.Load() != 0 {
			err = fmt.Errorf("%s: %d of its %d bytes were not in the fetched chunks", f.e.Path, f.left.Load(), f.e.Size)
		}
	}
	return written.Load(), done.Load(), err
}

// write writes b at off, creating the file on first use: exclusively, in a
// staging directory we made (os.Root keeps the path inside staging).
func (f *pfile) write(w *stagingWriter, b []byte, off int64) error {
	f.mu.Lock()
	if f.failed != nil {
		f.mu.Unlock()
		return f.failed
	}
	if f.f == nil {
		fh, err := w.st.OpenFile(w.stagePath(f.e.Path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			f.failed = fmt.Errorf("create %s in staging: %w", f.e.Path, err)
			f.mu.Unlock()
			return f.failed
		}
		// Reserve the space at once: writes arrive out of order, and a
		// full disk fails here rather than halfway.
		if err := fallocate(fh, f.e.Size); err != nil && errors.Is(err, unix.ENOSPC) {
			fh.Close()
			f.failed = fmt.Errorf("create %s in staging: %w", f.e.Path, err)
			f.mu.Unlock()
			return f.failed
		}
		f.f = fh
	}
	fh := f.f
	f.mu.Unlock()
	if _, err := fh.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s: %w", f.e.Path, err)
	}
	return nil
}

// finish sets owner, mode and mtime of a fully written file and closes it.
func (f *pfile) finish(w *stagingWriter) error {
	f.mu.Lock()
	fh := f.f
	f.f = nil
	f.mu.Unlock()
	var err error
	if w.o.chown {
		uid, gid := w.o.owner(f.e)
		err = fh.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears setuid/setgid.
		err = fh.Chmod(fileMode(w.o.mode(f.e)))
	}
	if err == nil {
		err = w.st.Chtimes(w.stagePath(f.e.Path), f.e.MTime, f.e.MTime)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.e.Path, err)
	}
	return nil
}
