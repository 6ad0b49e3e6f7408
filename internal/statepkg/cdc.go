package statepkg

import (
	"errors"
	"hash/fnv"
	"io"
	"math/bits"
	"sync"

	"github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
)

// Cuts carries the record boundaries of a stream (for a volume's tar
// stream: where each entry's header starts) from the stream's producer to
// WriteComponent, which prefers to cut chunks there. Without them a chunk of
// a stream of small files spans a dozen files, so changing one small file
// costs an apply the whole neighbourhood; with them a changed small file
// costs about one small chunk.
//
// Boundaries only move chunk cuts: readers see the same stream, a sequence
// of chunks, and need no knowledge of them. Wrong or missing marks cost
// dedup or fetch efficiency, never correctness.
//
// Cuts is safe for use by one producer and WriteComponent concurrently.
type Cuts struct {
	mu   sync.Mutex
	q    []cutMark // increasing offsets, not yet passed by the chunker
	last int64
}

type cutMark struct {
	off int64
	hit bool // the record's key selects this boundary (see Mark)
}

// CutMarker is implemented by stream writers that accept record boundaries
// (the writer handed to a driver's Capture when the chunker honours them).
type CutMarker interface {
	// MarkCut records that a record identified by key starts at stream
	// offset off. It must be called before the bytes at off are written
	// and with increasing offsets.
	MarkCut(off int64, key string)
}

// NewCuts returns an empty set of boundaries.
func NewCuts() *Cuts { return &Cuts{last: -1} }

// MarkCut implements CutMarker. The key (a file's path) decides, by its
// hash, whether a boundary is a preferred cut: half of them are, so that
// where chunks end depends on the records near the end, not on where the
// previous chunk happened to start (an inserted or resized file shifts no
// cuts beyond the next selected boundary, as with content-defined cuts).
func (c *Cuts) MarkCut(off int64, key string) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	// FNV's low bits mix poorly; take the top bit of a multiplied hash.
	hit := (h.Sum64()*0x9e3779b97f4a7c15)>>63 == 0
	c.mu.Lock()
	defer c.mu.Unlock()
	if off <= c.last {
		return // out of order: ignored, only efficiency is at stake
	}
	c.last = off
	c.q = append(c.q, cutMark{off: off, hit: hit})
}

// choose returns the relative position of the first boundary in
// [start+lo, start+hi) that is a hit or lies at or beyond start+avg, or -1,
// and forgets the boundaries before start+lo.
func (c *Cuts) choose(start int64, lo, avg, hi int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	drop := 0
	for drop < len(c.q) && c.q[drop].off < start+int64(lo) {
		drop++
	}
	if drop > 0 {
		c.q = append(c.q[:0], c.q[drop:]...)
	}
	for _, m := range c.q {
		rel := m.off - start
		if rel >= int64(hi) {
			break
		}
		if m.hit || rel >= int64(avg) {
			return int(rel)
		}
	}
	return -1
}

// cdcChunker is FastCDC exactly as go-cdc-chunkers' "fastcdc-v1.0.0"
// computes it (same gear table, masks, normalisation and cut rule, so
// streams without boundaries are cut where earlier versions cut them and
// dedup against them), plus cuts at record boundaries from Cuts.
type cdcChunker struct {
	r               io.Reader
	buf             []byte
	start, end      int   // unconsumed data is buf[start:end]
	off             int64 // stream offset of buf[start]
	err             error // read error or io.EOF, reported once data runs out
	min, avg, max   int
	maskS, maskL    uint64
	cuts            *Cuts
	boundaryMinSize int
}

func newCDCChunker(r io.Reader, o WriteOptions) *cdcChunker {
	c := &cdcChunker{r: r, buf: make([]byte, 2*o.MaxSize), min: o.MinSize, avg: o.AvgSize, max: o.MaxSize, cuts: o.Cuts}
	c.maskS, c.maskL = fastCDCMasks(o.MinSize, o.AvgSize, o.MaxSize)
	// Below half the average, a boundary cut would save an apply little
	// (a changed small file still costs one chunk) but add chunks, each of
	// which costs a full apply a store read (about 30 us on a local disk;
	// a request on a remote store).
	c.boundaryMinSize = max(o.MinSize, o.AvgSize/2)
	return c
}

// fastCDCMasks are the masks go-cdc-chunkers' fastcdc-v1.0.0 uses
// (normalisation level 2; its legacy masks for its own default sizes).
func fastCDCMasks(minSize, avgSize, maxSize int) (maskS, maskL uint64) {
	if minSize == 2<<10 && maxSize == 64<<10 && avgSize == 8<<10 {
		return 0x0003590703530000, 0x0000d90003530000
	}
	const level = 2
	b := bits.Len(uint(avgSize)) - 1 // log2: avgSize is a power of two
	return spacedMask(b + level), spacedMask(b - level)
}

func spacedMask(ones int) uint64 {
	if ones >= 64 {
		return ^uint64(0)
	}
	if ones <= 0 {
		return 0
	}
	step := 64 / ones
	var m uint64
	for i := range ones {
		m |= 1 << (63 - i*step)
	}
	return m
}

// fill reads until max bytes are buffered or the stream ends.
func (c *cdcChunker) fill() {
	for c.end-c.start < c.max && c.err == nil {
		if len(c.buf)-c.end < c.max-(c.end-c.start) {
			c.end = copy(c.buf, c.buf[c.start:c.end])
			c.start = 0
		}
		var n int
		for tries := 0; n == 0 && c.err == nil; tries++ {
			n, c.err = c.r.Read(c.buf[c.end:])
			if n == 0 && c.err == nil && tries >= 100 {
				c.err = io.ErrNoProgress
			}
		}
		c.end += n
	}
}

// next returns the next chunk, which aliases the chunker's buffer until the
// following call, or io.EOF after the last one.
func (c *cdcChunker) next() ([]byte, error) {
	c.fill()
	n := c.end - c.start
	if n == 0 {
		if c.err == nil || errors.Is(c.err, io.EOF) {
			return nil, io.EOF
		}
		return nil, c.err
	}
	if c.err != nil && !errors.Is(c.err, io.EOF) {
		return nil, c.err
	}
	data := c.buf[c.start:c.end]
	cut := c.cdcCut(data)
	if c.cuts != nil && cut > c.boundaryMinSize {
		if b := c.cuts.choose(c.off, c.boundaryMinSize, c.avg, cut); b > 0 {
			cut = b
		}
	}
	c.start += cut
	c.off += int64(cut)
	return data[:cut], nil
}

// cdcCut is go-cdc-chunkers' FastCDC.Algorithm.
func (c *cdcChunker) cdcCut(data []byte) int {
	n, normal := len(data), c.avg
	switch {
	case n <= c.min:
		return n
	case n >= c.max:
		n = c.max
	case n <= normal:
		normal = n
	}
	g := &fastcdc.G
	fp := uint64(0)
	mask := c.maskS
	i := c.min
	for ; i < n; i++ {
		if i == normal {
			mask = c.maskL
		}
		fp = (fp << 1) + g[data[i]]
		if fp&mask == 0 {
			return i
		}
	}
	return i
}
