//go:build linux || darwin

package volume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"runtime"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// demux receives the bytes of the fetched spans, back to back, and writes
// each file's range straight from the chunk buffers into its staging file:
// no pipe, no intermediate copies.
type demux struct {
	ctx   context.Context
	w     *stagingWriter
	files []statepkg.FileEntry // in stream order
	vOff  []int64              // offset of each file in the concatenated spans
	vEnd  int64                // length of the concatenated spans
	pos   int64                // bytes received so far
	next  int                  // next file to open
	cur   int                  // file being written, -1 when none
	fd    int
	h     hash.Hash
	p     driver.Progress
	name  string
	done  int64
	pend  int64
}

func newDemux(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, spans []span, w *stagingWriter, p driver.Progress) *demux {
	d := &demux{ctx: ctx, w: w, files: files, vOff: make([]int64, len(files)), cur: -1, fd: -1, p: p, name: c.Name}
	var v int64
	for _, s := range spans {
		for k := s.lo; k < s.hi; k++ {
			d.vOff[k] = v + files[k].DataOffset - s.off
		}
		v += s.end - s.off
	}
	d.vEnd = v
	return d
}

// startFiles opens (and, when empty, finishes) files starting at pos.
func (d *demux) startFiles() error {
	for d.cur < 0 && d.next < len(d.files) && d.vOff[d.next] == d.pos {
		e := d.files[d.next]
		fd, err := d.w.open(e)
		if err != nil {
			return err
		}
		d.cur, d.fd = d.next, fd
		d.next++
		if d.w.o.verify {
			d.h = sha256.New()
		}
		if e.Size == 0 {
			if err := d.endFile(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *demux) endFile() error {
	e := d.files[d.cur]
	fd := d.fd
	d.cur, d.fd = -1, -1
	if d.w.o.verify {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != e.SHA256 {
			unix.Close(fd)
			return fmt.Errorf("%s: content sha256 %s does not match the index (%s)", e.Path, got, e.SHA256)
		}
	}
	if err := d.w.finish(e, fd); err != nil {
		return err
	}
	d.done++
	if d.done%64 == 0 {
		d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Files: 64})
	}
	return nil
}

func (d *demux) Write(b []byte) (int, error) {
	n := len(b)
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	d.pend += int64(n)
	if d.pend >= 1<<20 {
		d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Bytes: d.pend})
		d.pend = 0
	}
	for len(b) > 0 {
		if err := d.startFiles(); err != nil {
			return 0, err
		}
		if d.cur < 0 {
			// Bytes between files (tar headers, padding): skip to the
			// next file's start.
			skip := int64(len(b))
			if d.next < len(d.files) {
				skip = min(skip, d.vOff[d.next]-d.pos)
			}
			b = b[skip:]
			d.pos += skip
			continue
		}
		e := d.files[d.cur]
		left := d.vOff[d.cur] + e.Size - d.pos
		chunk := b[:min(int64(len(b)), left)]
		if _, err := fdWriter(d.fd).Write(chunk); err != nil {
			return 0, fmt.Errorf("write %s: %w", e.Path, err)
		}
		if d.h != nil {
			d.h.Write(chunk)
		}
		b = b[len(chunk):]
		d.pos += int64(len(chunk))
		if d.pos == d.vOff[d.cur]+e.Size {
			if err := d.endFile(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// close finishes files at the very end (empty ones) and checks that every
// file was written whole; it closes a half-written file on failure.
func (d *demux) close(failed bool) error {
	if failed {
		if d.fd >= 0 {
			unix.Close(d.fd)
		}
		return nil
	}
	d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Bytes: d.pend, Files: d.done % 64})
	if err := d.startFiles(); err != nil {
		return err
	}
	if d.cur >= 0 || d.next < len(d.files) || d.pos != d.vEnd {
		return fmt.Errorf("stream ended after %d of %d bytes", d.pos, d.vEnd)
	}
	return nil
}

// span is a byte range of the stream fetched in one ReadRange, holding the
// content of files[lo:hi] of the write list.
type span struct {
	off, end int64
	lo, hi   int
}

// planSpans maps the content ranges of the files to write onto chunk
// boundaries and merges ranges that share or touch chunks, so each needed
// chunk is fetched exactly once and no other chunk is fetched.
func planSpans(c statepkg.Component, files []statepkg.FileEntry) []span {
	var out []span
	for k, e := range files {
		a, b := e.DataOffset, e.DataOffset+e.Size
		if len(c.Chunks) > 0 && e.Size > 0 {
			i := sort.Search(len(c.Chunks), func(i int) bool { return c.Chunks[i].Offset+c.Chunks[i].Size > a })
			j := sort.Search(len(c.Chunks), func(j int) bool { return c.Chunks[j].Offset >= b }) - 1
			if i < len(c.Chunks) && j >= i {
				a, b = c.Chunks[i].Offset, c.Chunks[j].Offset+c.Chunks[j].Size
			}
		}
		if n := len(out); n > 0 && a <= out[n-1].end {
			if b > out[n-1].end {
				out[n-1].end = b
			}
			out[n-1].hi = k + 1
			continue
		}
		out = append(out, span{off: a, end: b, lo: k, hi: k + 1})
	}
	return out
}

// fetchFiles streams the content of the regular files among idx into
// staging, fetching only the chunks that hold them, in one pass.
func fetchFiles(ctx context.Context, c statepkg.Component, idx []int, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	var files []statepkg.FileEntry
	for _, i := range idx {
		if c.Files[i].Type == statepkg.FileRegular {
			files = append(files, c.Files[i])
		}
	}
	if len(files) == 0 {
		return 0, 0, nil
	}
	v, concurrent := src.(driver.ChunkVisitor)
	if concurrent && useParallel(files, w.o) {
		return fetchFilesParallel(ctx, c, files, v, w, p)
	}
	if concurrent {
		if segs := dirSegments(files, w, writerSegments(src)); len(segs) > 2 { // more than one run
			return fetchSegments(ctx, c, files, segs, shareReadAhead(src, len(segs)-1), w, p)
		}
	}
	return demuxFiles(ctx, c, files, src, w, p)
}

// demuxFiles writes files (in stream order) into staging through one demux
// fed by one pass over the spans holding them.
func demuxFiles(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	spans := planSpans(c, files)
	ranges := make([]driver.Span, len(spans))
	for i, s := range spans {
		ranges[i] = driver.Span{Off: s.off, End: s.end}
	}
	d := newDemux(ctx, c, files, spans, w, p)
	var err error
	if sr, ok := src.(driver.SpanReader); ok {
		err = sr.ReadSpans(ctx, ranges, d)
	} else {
		for _, r := range ranges {
			if err = src.ReadRange(ctx, r.Off, r.End-r.Off, d); err != nil {
				break
			}
		}
	}
	if cerr := d.close(err != nil); err == nil {
		err = cerr
	}
	return d.pos, d.done, err
}

// Small files are written by several demuxes at once, each over its own
// run of whole staging directories: the per-file system calls (create,
// write, owner, mode, times, close), which dominate an apply of small
// files, then use every core, and no two writers create files in the same
// directory (creation holds the directory's lock).
const (
	maxWriterSegments = 4
	// minSegmentFiles keeps small applies (an incremental one touching a
	// few files) on one writer.
	minSegmentFiles = 512
)

// writerSegments is how many runs of files are written at once: one per
// CPU, at most maxWriterSegments, and no more than the chunks the source
// reads ahead (each run reads ahead at least one; see shareReadAhead).
func writerSegments(src driver.ChunkSource) int {
	n := min(runtime.GOMAXPROCS(0), maxWriterSegments)
	if s, ok := src.(driver.StoreSource); ok {
		n = min(n, readAhead(s))
	}
	return n
}

// readAhead is how many chunks a StoreSource reads ahead (statepkg's
// default when unset).
func readAhead(s driver.StoreSource) int {
	if s.Options.Concurrency > 0 {
		return s.Options.Concurrency
	}
	return max(runtime.GOMAXPROCS(0), 2)
}

// shareReadAhead returns the source each of runs concurrent readers uses:
// a StoreSource's read-ahead (chunks fetched and held ahead, the memory
// bound ApplyOptions.ReadConcurrency sets per component) is shared among
// them, not multiplied.
func shareReadAhead(src driver.ChunkSource, runs int) driver.ChunkSource {
	if s, ok := src.(driver.StoreSource); ok {
		s.Options.Concurrency = max(readAhead(s)/runs, 1)
		return s
	}
	return src
}

// dirSegments cuts files (in stream order) into at most n runs of about
// equal count, each cut placed at the directory change nearest to its
// share; it returns the runs' start indices followed by len(files). A
// staging directory is never split, so files all in one make one run.
func dirSegments(files []statepkg.FileEntry, w *stagingWriter, n int) []int {
	n = min(n, len(files)/minSegmentFiles)
	if n < 2 {
		return []int{0, len(files)}
	}
	// boundary reports whether files i-1 and i lie in different
	// directories.
	boundary := func(i int) bool {
		a, _ := w.loc(files[i-1].Path)
		b, _ := w.loc(files[i].Path)
		return a != b
	}
	out := []int{0}
	for k := 1; k < n; k++ {
		prev, goal := out[len(out)-1], k*len(files)/n
		if goal <= prev {
			continue
		}
		fwd := goal
		for fwd < len(files) && !boundary(fwd) {
			fwd++
		}
		back := goal
		for back > prev && !boundary(back) {
			back--
		}
		switch {
		case back > prev && (fwd == len(files) || goal-back < fwd-goal):
			out = append(out, back)
		case fwd < len(files):
			out = append(out, fwd)
		}
	}
	return append(out, len(files))
}

// fetchSegments runs one demux per run of files (see dirSegments)
// concurrently, each with its own staging writer (directory descriptor),
// and returns the bytes and files written in all, and the first error. A
// failing run cancels the others.
func fetchSegments(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, segs []int, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	// errgroup keeps the first real failure, not the cancellation it
	// causes in the other runs.
	g, ctx := errgroup.WithContext(ctx)
	var bytes, count atomic.Int64
	for k := 0; k+1 < len(segs); k++ {
		sw := w.clone()
		g.Go(func() error {
			defer sw.close()
			n, done, err := demuxFiles(ctx, c, files[segs[k]:segs[k+1]], src, sw, p)
			bytes.Add(n)
			count.Add(done)
			return err
		})
	}
	err := g.Wait()
	return bytes.Load(), count.Load(), err
}
