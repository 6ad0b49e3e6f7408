package statepkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Default chunk sizes. DESIGN.md suggests an average of 1-4 MiB; the issue's
// dedup goal (a 1% change in 20 places of a 256 MiB stream must add at most
// 3% new bytes) needs much smaller chunks, because every changed place costs
// about one to two average chunks beyond the change itself. FastCDC's
// normalised chunking puts most cuts a little past AvgSize, so the mean chunk
// is about 1.2*AvgSize. See BenchmarkDedup for the measured effect.
const (
	DefaultMinSize = 16 << 10
	DefaultAvgSize = 64 << 10
	DefaultMaxSize = 256 << 10
)

// WriteOptions tune WriteComponent. Zero values mean the defaults.
type WriteOptions struct {
	// Concurrency is the number of chunks compressed, hashed and stored in
	// parallel (default GOMAXPROCS). Memory in use is about
	// 3*Concurrency*MaxSize.
	Concurrency int
	// MinSize, AvgSize and MaxSize are the content-defined chunking bounds
	// (defaults DefaultMinSize, DefaultAvgSize, DefaultMaxSize; with only
	// AvgSize set, MinSize is AvgSize/4 and MaxSize AvgSize*4). AvgSize must
	// be a power of two and MinSize < AvgSize < MaxSize <= MaxChunkSize.
	// Changing them changes the cut points and so defeats dedup against
	// versions written with other values.
	MinSize, AvgSize, MaxSize int
	// Progress, if set, is called from one goroutine with the number of
	// stream bytes stored so far, after each chunk.
	Progress func(bytes int64)
	// Codec, if set, is used instead of building one for this call.
	Codec *Codec
	// Cuts, if set, receives the stream's record boundaries from its
	// producer (see Cuts); chunks are then preferably cut there.
	Cuts *Cuts
}

func (o *WriteOptions) withDefaults() (WriteOptions, error) {
	c := *o
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.AvgSize == 0 {
		c.AvgSize = DefaultAvgSize
	}
	// Unset bounds follow the average, as the defaults do (avg/4, avg*4).
	if c.MinSize == 0 {
		c.MinSize = c.AvgSize / 4
	}
	if c.MaxSize == 0 {
		c.MaxSize = min(c.AvgSize*4, MaxChunkSize)
	}
	if c.MinSize < 64 || c.MinSize >= c.AvgSize || c.AvgSize >= c.MaxSize || c.MaxSize > MaxChunkSize ||
		c.AvgSize&(c.AvgSize-1) != 0 {
		return c, fmt.Errorf("chunk sizes min %d, avg %d, max %d: want 64 <= min < avg < max <= %d with avg a power of two",
			c.MinSize, c.AvgSize, c.MaxSize, MaxChunkSize)
	}
	return c, nil
}

// WriteStats counts what WriteComponent did.
type WriteStats struct {
	Chunks         int   // chunks in the component
	NewChunks      int   // chunks the store did not have yet
	Bytes          int64 // uncompressed stream length
	NewBytes       int64 // uncompressed length of the new chunks
	StoredBytes    int64 // compressed size of all the component's chunks
	NewStoredBytes int64 // compressed bytes actually written to the store
}

type writeJob struct {
	idx  int
	off  int64
	data []byte
}

type writeResult struct {
	idx    int
	chunk  Chunk
	isNew  bool
	stored int64
}

// WriteComponent splits the stream r into content-defined chunks, compresses
// and stores the chunks the store does not have yet, and returns spec with
// Size, Digest and Chunks filled in (its Name, Kind, Format, Meta and Files
// are kept). Chunks are hashed, compressed and stored by parallel workers;
// memory stays bounded whatever the stream's length.
func WriteComponent(ctx context.Context, store ChunkStore, spec Component, r io.Reader, opts WriteOptions) (Component, WriteStats, error) {
	var stats WriteStats
	if err := ValidateName(spec.Name); err != nil {
		return spec, stats, fmt.Errorf("writing component: %w", err)
	}
	if !KnownKind(spec.Kind) {
		return spec, stats, fmt.Errorf("writing component %q: %w: unknown kind %q", spec.Name, ErrInvalidManifest, spec.Kind)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return spec, stats, fmt.Errorf("writing component %q: %w", spec.Name, err)
	}
	codec := o.Codec
	if codec == nil {
		if codec, err = NewCodec(o.Concurrency); err != nil {
			return spec, stats, err
		}
		defer codec.Close()
	}

	streamHash := sha256.New()
	chunker := newCDCChunker(io.TeeReader(r, streamHash), o)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Buffers circulate between the reader and the workers; their number
	// bounds memory.
	nbuf := 2*o.Concurrency + 1
	bufs := make(chan []byte, nbuf)
	for range nbuf {
		bufs <- make([]byte, 0, o.MaxSize)
	}
	jobs := make(chan writeJob, o.Concurrency)
	results := make(chan writeResult, o.Concurrency)

	// seen dedups chunks repeated within this stream, so that each is
	// stored and counted as new only once.
	seen := &chunkSeen{sizes: make(map[string]int64)}

	var workers sync.WaitGroup
	for range o.Concurrency {
		workers.Go(func() {
			dst := make([]byte, 0, o.MaxSize+o.MaxSize/8)
			for job := range jobs {
				res, err := storeChunk(ctx, store, codec, job, seen, &dst)
				bufs <- job.data[:0]
				if err != nil {
					cancel(fmt.Errorf("writing component %q: chunk at offset %d: %w", spec.Name, job.off, err))
					continue // drain
				}
				select {
				case results <- res:
				case <-ctx.Done():
				}
			}
		})
	}

	// The collector puts results back in stream order.
	var chunks []Chunk
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		pending := map[int]writeResult{}
		next := 0
		var done int64
		for res := range results {
			pending[res.idx] = res
			for {
				r, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				chunks = append(chunks, r.chunk)
				stats.StoredBytes += r.chunk.StoredSize
				if r.isNew {
					stats.NewChunks++
					stats.NewStoredBytes += r.stored
					stats.NewBytes += r.chunk.Size
				}
				done += r.chunk.Size
				if o.Progress != nil {
					o.Progress(done)
				}
			}
		}
	}()

	readErr := func() error {
		defer close(jobs)
		var off int64
		for idx := 0; ; idx++ {
			data, err := chunker.next()
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("writing component %q: reading stream at offset %d: %w", spec.Name, off, err)
			}
			if len(data) > 0 {
				var buf []byte
				select {
				case buf = <-bufs:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				// data aliases the chunker's buffer, which the next call reuses.
				job := writeJob{idx: idx, off: off, data: append(buf, data...)}
				select {
				case jobs <- job:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				off += int64(len(data))
			}
			if err != nil { // io.EOF
				stats.Bytes = off
				return nil
			}
		}
	}()
	workers.Wait()
	close(results)
	<-collected

	if readErr == nil {
		readErr = context.Cause(ctx)
	}
	if readErr != nil {
		return spec, stats, readErr
	}

	out := spec
	out.Size = stats.Bytes
	out.Digest = DigestPrefix + hex.EncodeToString(streamHash.Sum(nil))
	if chunks == nil {
		chunks = []Chunk{}
	}
	out.Chunks = chunks
	stats.Chunks = len(chunks)
	if err := out.Validate(); err != nil {
		return spec, stats, fmt.Errorf("writing component %q: %w", spec.Name, err)
	}
	return out, stats, nil
}

// chunkSeen tracks the chunks of one WriteComponent call: inFlight while a
// worker is storing a chunk, its stored size after.
type chunkSeen struct {
	mu    sync.Mutex
	sizes map[string]int64
}

const inFlight = -1

// claim reports the chunk's stored size if this write already stored it,
// and whether another worker got to it first.
func (s *chunkSeen) claim(digest string) (size int64, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, dup = s.sizes[digest]
	if !dup {
		s.sizes[digest] = inFlight
	}
	return size, dup
}

func (s *chunkSeen) done(digest string, size int64) {
	s.mu.Lock()
	s.sizes[digest] = size
	s.mu.Unlock()
}

// storeChunk hashes and compresses one chunk and puts it in the store unless
// the store (or this stream) already has it. dst is the worker's reusable
// compression buffer.
func storeChunk(ctx context.Context, store ChunkStore, codec *Codec, job writeJob, seen *chunkSeen, dst *[]byte) (writeResult, error) {
	digest := DigestBytes(job.data)
	res := writeResult{idx: job.idx, chunk: Chunk{Digest: digest, Offset: job.off, Size: int64(len(job.data))}}

	size, dup := seen.claim(digest)
	claimed := !dup
	if dup && size != inFlight {
		res.chunk.StoredSize = size
		return res, nil
	}
	if !dup {
		if st, ok := store.(ChunkStatter); ok {
			size, err := st.StoredSize(ctx, digest)
			if err == nil {
				res.chunk.StoredSize = size
				seen.done(digest, size)
				return res, nil
			}
			if !errors.Is(err, ErrMissingChunk) {
				return res, fmt.Errorf("checking chunk %s: %w", digest, err)
			}
		} else {
			has, err := store.Has(ctx, digest)
			if err != nil {
				return res, fmt.Errorf("checking chunk %s: %w", digest, err)
			}
			dup = has
		}
	}
	// Without a size from the store, known chunks are compressed too, to
	// record their stored size; that costs CPU but no I/O.
	compressed := codec.enc.EncodeAll(job.data, (*dst)[:0])
	*dst = compressed
	res.chunk.StoredSize = int64(len(compressed))
	if !dup {
		if err := store.Put(ctx, digest, compressed); err != nil {
			return res, fmt.Errorf("storing chunk %s: %w", digest, err)
		}
		res.isNew = true
		res.stored = int64(len(compressed))
	}
	if claimed {
		seen.done(digest, res.chunk.StoredSize)
	}
	return res, nil
}
