package statepkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// ReadOptions tune ReadComponent and ReadRange. Zero values mean defaults.
type ReadOptions struct {
	// Concurrency is how many chunks are fetched and verified ahead of the
	// one being written (default GOMAXPROCS, at least 2).
	Concurrency int
	// Progress, if set, is called from one goroutine with the number of
	// bytes written so far, after each chunk.
	Progress func(bytes int64)
	// Codec, if set, is used instead of building one for this call.
	Codec *Codec
}

// ReadComponent writes the component's stream to w. Every chunk is fetched
// (several ahead, in parallel), decompressed and checked against its digest
// before any of its bytes are written; on the first missing or damaged chunk
// it returns a *ChunkError and w has received exactly the chunks before it.
// At the end the whole stream is checked against the component's digest.
func ReadComponent(ctx context.Context, store ChunkStore, c Component, w io.Writer, opts ReadOptions) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("reading component %q: %w", c.Name, err)
	}
	h := sha256.New()
	var done int64
	err := readChunks(ctx, store, c.Name, c.Chunks, opts, func(ch Chunk, data []byte) error {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("reading component %q: writing output at offset %d: %w", c.Name, ch.Offset, err)
		}
		h.Write(data)
		done += int64(len(data))
		if opts.Progress != nil {
			opts.Progress(done)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if got := DigestPrefix + hex.EncodeToString(h.Sum(nil)); got != c.Digest {
		// Every chunk matched its digest, so the manifest itself is
		// inconsistent: its chunk list is not the stream it names.
		return fmt.Errorf("%w: component %q: chunks make a stream with digest %s, manifest says %s",
			ErrInvalidManifest, c.Name, got, c.Digest)
	}
	return nil
}

// ReadRange writes bytes [off, off+n) of the component's stream to w,
// fetching only the chunks that cover them, each verified before use. The
// whole-stream digest is not checked (the rest of the stream is not read).
func ReadRange(ctx context.Context, store ChunkStore, c Component, off, n int64, w io.Writer, opts ReadOptions) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("reading component %q: %w", c.Name, err)
	}
	if off < 0 || n < 0 || off > c.Size || n > c.Size-off {
		return fmt.Errorf("reading component %q: range [%d, +%d) outside its %d bytes", c.Name, off, n, c.Size)
	}
	if n == 0 {
		return nil
	}
	end := off + n
	var done int64
	return readChunks(ctx, store, c.Name, c.CoveringChunks(off, n), opts, func(ch Chunk, data []byte) error {
		lo, hi := max(off-ch.Offset, 0), min(end-ch.Offset, ch.Size)
		if _, err := w.Write(data[lo:hi]); err != nil {
			return fmt.Errorf("reading component %q: writing output at offset %d: %w", c.Name, ch.Offset+lo, err)
		}
		done += hi - lo
		if opts.Progress != nil {
			opts.Progress(done)
		}
		return nil
	})
}

// CoveringChunks returns the chunks that hold bytes [off, off+n) of the
// stream (none when n <= 0), e.g. to work out what an incremental apply must
// fetch. The chunk list must be valid (see Validate).
func (c *Component) CoveringChunks(off, n int64) []Chunk {
	if n <= 0 {
		return nil
	}
	end := off + n
	first := sort.Search(len(c.Chunks), func(i int) bool { return c.Chunks[i].Offset+c.Chunks[i].Size > off })
	last := sort.Search(len(c.Chunks), func(i int) bool { return c.Chunks[i].Offset >= end })
	if first >= last {
		return nil
	}
	return c.Chunks[first:last]
}

// OpenComponent returns the component's stream as a reader, produced by
// ReadComponent in a goroutine. Read returns ReadComponent's error once the
// good bytes before it are consumed. Close stops the goroutine.
func OpenComponent(ctx context.Context, store ChunkStore, c Component, opts ReadOptions) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(ReadComponent(ctx, store, c, pw, opts))
	}()
	return &componentReader{PipeReader: pr, cancel: cancel, done: done}
}

type componentReader struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *componentReader) Close() error {
	r.cancel()
	err := r.PipeReader.Close()
	<-r.done
	return err
}

// VisitChunks fetches chunks of the named component (any subset of its
// chunk list), each verified, with opts.Concurrency workers, and calls fn
// from those workers with each chunk's bytes, in no particular order. Calls
// of fn run concurrently and must not keep data after they return. It stops
// at the first failure: a missing or damaged chunk returns a *ChunkError,
// an error of fn is returned as it is. opts.Progress is not used.
func VisitChunks(ctx context.Context, store ChunkStore, component string, chunks []Chunk, opts ReadOptions, fn func(Chunk, []byte) error) error {
	if len(chunks) == 0 {
		return ctx.Err()
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = max(runtime.GOMAXPROCS(0), 2)
	}
	conc = min(conc, len(chunks))
	codec := opts.Codec
	if codec == nil {
		var err error
		if codec, err = NewCodec(conc); err != nil {
			return err
		}
		defer codec.Close()
	}
	if bg, ok := store.(ChunkBatchGetter); ok {
		batches := planBatches(chunks)
		return forEachIndex(ctx, min(batchInflight(conc), len(batches)), len(batches), func(ctx context.Context, buf *chunkBufs, i int) error {
			part := chunks[batches[i].lo:batches[i].hi]
			return fetchBatch(ctx, bg, store, codec, component, part,
				func(int) *chunkBufs { return buf },
				func(j int, raw []byte) error { return fn(part[j], raw) })
		})
	}
	return forEachIndex(ctx, conc, len(chunks), func(ctx context.Context, buf *chunkBufs, i int) error {
		ch := chunks[i]
		if err := fetchChunk(ctx, store, codec, ch, buf); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return ctxErr
			}
			return &ChunkError{Component: component, Chunk: ch.Digest, Offset: ch.Offset, Err: err}
		}
		return fn(ch, buf.raw)
	})
}

// forEachIndex calls do for 0..n-1 on the given number of workers, each with
// its own reused chunk buffers, and stops all of them at the first error,
// which it returns (or the context's error).
func forEachIndex(ctx context.Context, workers, n int, do func(ctx context.Context, buf *chunkBufs, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			var buf chunkBufs
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(ctx, &buf, i); err != nil {
					once.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

type fetchResult struct {
	data chunkBufs
	err  error
}

// chunkBufs are the buffers of one chunk in flight: its compressed bytes as
// fetched and its decompressed, verified bytes. Both are reused.
type chunkBufs struct {
	comp, raw []byte
}

// readChunks fetches and verifies chunks with bounded read-ahead and hands
// them to emit in order. It stops at the first failure, before emitting the
// failed chunk.
func readChunks(ctx context.Context, store ChunkStore, component string, chunks []Chunk, opts ReadOptions, emit func(Chunk, []byte) error) error {
	if len(chunks) == 0 {
		return ctx.Err()
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = max(runtime.GOMAXPROCS(0), 2)
	}
	codec := opts.Codec
	if codec == nil {
		var err error
		if codec, err = NewCodec(conc); err != nil {
			return err
		}
		defer codec.Close()
	}

	if bg, ok := store.(ChunkBatchGetter); ok {
		return readBatches(ctx, bg, store, codec, component, chunks, batchInflight(conc), emit)
	}

	ctx, cancel := context.WithCancel(ctx)
	// slots bounds the chunks fetched but not yet emitted; their buffers are
	// reused, so memory stays at about conc chunks.
	slots := make(chan chunkBufs, conc)
	for range conc {
		slots <- chunkBufs{}
	}
	results := make([]chan fetchResult, len(chunks))
	for i := range results {
		results[i] = make(chan fetchResult, 1)
	}
	var fetchers sync.WaitGroup
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for i, ch := range chunks {
			var buf chunkBufs
			select {
			case buf = <-slots:
			case <-ctx.Done():
				return
			}
			fetchers.Go(func() {
				err := fetchChunk(ctx, store, codec, ch, &buf)
				results[i] <- fetchResult{buf, err}
			})
		}
	}()
	defer func() {
		cancel()
		<-dispatched
		fetchers.Wait()
	}()

	for i, ch := range chunks {
		var res fetchResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(res.err, ctxErr) {
				return ctxErr
			}
			return &ChunkError{Component: component, Chunk: ch.Digest, Offset: ch.Offset, Err: res.err}
		}
		if err := emit(ch, res.data.raw); err != nil {
			return err
		}
		slots <- res.data
	}
	return nil
}

// fetchChunk gets one chunk from the store into b.comp and leaves its
// verified, decompressed bytes in b.raw, reusing both buffers when they are
// large enough.
func fetchChunk(ctx context.Context, store ChunkStore, codec *Codec, ch Chunk, b *chunkBufs) error {
	compressed, err := getChunk(ctx, store, ch.Digest, b.comp[:0])
	if err != nil {
		return err
	}
	b.comp = compressed
	return decodeVerified(codec, ch, compressed, b)
}

// decodeVerified decompresses a chunk into b.raw (reused when large enough)
// and checks it against its digest and size.
func decodeVerified(codec *Codec, ch Chunk, compressed []byte, b *chunkBufs) error {
	buf := b.raw
	if cap(buf) < int(ch.Size) {
		buf = make([]byte, 0, ch.Size)
	}
	data, err := codec.decodeChunk(ch.Digest, compressed, buf)
	if err != nil {
		return err
	}
	if int64(len(data)) != ch.Size {
		// Only reachable if the digest matched but the manifest's size is
		// wrong: the manifest, not the chunk, is inconsistent.
		return fmt.Errorf("%w: chunk is %d bytes, manifest says %d", ErrCorruptChunk, len(data), ch.Size)
	}
	b.raw = data
	return nil
}

// Batches of chunks fetched with one ChunkBatchGetter call: large enough that
// a request's cost is small next to its bytes, small enough that a few in
// flight bound memory (their decompressed bytes wait to be written in order).
const (
	batchMaxChunks = 128
	batchMaxBytes  = 4 << 20
	// minBatchInflight keeps a few requests in flight even on small
	// machines: while one batch is decoded, the next is on the wire;
	// maxBatchInflight bounds a reader's memory (about 2 x 4 MiB a batch)
	// when callers ask for many chunks ahead.
	minBatchInflight = 4
	maxBatchInflight = 8
)

func batchInflight(conc int) int { return min(max(conc, minBatchInflight), maxBatchInflight) }

// span is the chunk index range [lo, hi) of one batch.
type span struct{ lo, hi int }

// planBatches cuts chunks into consecutive runs of at most batchMaxChunks
// chunks and batchMaxBytes uncompressed bytes (at least one chunk each).
func planBatches(chunks []Chunk) []span {
	var out []span
	lo, bytes := 0, int64(0)
	for i, ch := range chunks {
		if i > lo && (i-lo >= batchMaxChunks || bytes+ch.Size > batchMaxBytes) {
			out = append(out, span{lo, i})
			lo, bytes = i, 0
		}
		bytes += ch.Size
	}
	return append(out, span{lo, len(chunks)})
}

// fetchBatch fetches chunks with one GetBatch call, verifies each into
// bufs(j) and hands it to use, in order. If the batch call fails, the chunks
// not handed over yet are fetched one by one with Get, so a missing or
// damaged chunk is named exactly (and a transient failure costs no more).
// Chunk failures are *ChunkError; errors of use are returned as they are.
func fetchBatch(ctx context.Context, bg ChunkBatchGetter, store ChunkStore, codec *Codec, component string, chunks []Chunk,
	bufs func(j int) *chunkBufs, use func(j int, raw []byte) error) error {
	digests := make([]string, len(chunks))
	for j, ch := range chunks {
		digests[j] = ch.Digest
	}
	chunkErr := func(j int, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return &ChunkError{Component: component, Chunk: chunks[j].Digest, Offset: chunks[j].Offset, Err: err}
	}
	next := 0
	var stop error // set by the callback: a damaged chunk or an error of use
	// GetBatch's own error is not returned: the chunks it did not hand over
	// are fetched one by one below, which names the failing chunk.
	_ = bg.GetBatch(ctx, digests, func(j int, compressed []byte) error {
		if j != next {
			stop = fmt.Errorf("store's GetBatch handed over chunk %d, want %d", j, next)
			return stop
		}
		b := bufs(j)
		if err := decodeVerified(codec, chunks[j], compressed, b); err != nil {
			stop = chunkErr(j, err)
			return stop
		}
		if err := use(j, b.raw); err != nil {
			stop = err
			return stop
		}
		next++
		return nil
	})
	switch {
	case stop != nil:
		return stop
	case next == len(chunks):
		return nil // everything handed over; a late error no longer matters
	case ctx.Err() != nil:
		return ctx.Err()
	}
	for j := next; j < len(chunks); j++ {
		b := bufs(j)
		if err := fetchChunk(ctx, store, codec, chunks[j], b); err != nil {
			return chunkErr(j, err)
		}
		if err := use(j, b.raw); err != nil {
			return err
		}
	}
	return nil
}

// readBatches is readChunks for a ChunkBatchGetter: up to inflight batches
// are fetched at once, each into its own set of buffers, and their chunks
// emitted in order as they arrive.
func readBatches(ctx context.Context, bg ChunkBatchGetter, store ChunkStore, codec *Codec, component string, chunks []Chunk, inflight int,
	emit func(Chunk, []byte) error) error {
	batches := planBatches(chunks)
	inflight = min(inflight, len(batches))
	ctx, cancel := context.WithCancel(ctx)
	// slots bounds the batches fetched but not yet fully emitted; each holds
	// the buffers of one batch's chunks, reused by a later batch.
	slots := make(chan []chunkBufs, inflight)
	for range inflight {
		slots <- nil
	}
	// bufsOf[b] is batch b's buffers: written before its fetcher starts, read
	// by the emitter after that fetcher's last result.
	bufsOf := make([][]chunkBufs, len(batches))
	results := make([]chan fetchResult, len(chunks))
	for i := range results {
		results[i] = make(chan fetchResult, 1)
	}
	var fetchers sync.WaitGroup
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for b, sp := range batches {
			var bufs []chunkBufs
			select {
			case bufs = <-slots:
			case <-ctx.Done():
				return
			}
			if n := sp.hi - sp.lo; len(bufs) < n {
				bufs = append(bufs, make([]chunkBufs, n-len(bufs))...)
			}
			bufsOf[b] = bufs
			fetchers.Go(func() {
				sent := 0
				err := fetchBatch(ctx, bg, store, codec, component, chunks[sp.lo:sp.hi],
					func(j int) *chunkBufs { return &bufs[j] },
					func(j int, raw []byte) error {
						results[sp.lo+j] <- fetchResult{data: chunkBufs{raw: raw}}
						sent++
						return nil
					})
				if err != nil && sp.lo+sent < sp.hi {
					// Every chunk before the failed one was handed over.
					results[sp.lo+sent] <- fetchResult{err: err}
				}
			})
		}
	}()
	defer func() {
		cancel()
		<-dispatched
		fetchers.Wait()
	}()

	b := 0
	for i, ch := range chunks {
		var res fetchResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(res.err, ctxErr) {
				return ctxErr
			}
			return res.err
		}
		if err := emit(ch, res.data.raw); err != nil {
			return err
		}
		if i == batches[b].hi-1 {
			slots <- bufsOf[b]
			b++
		}
	}
	return nil
}
