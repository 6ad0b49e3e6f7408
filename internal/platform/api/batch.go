package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Batch download: one request for many chunks, because a request per 64 KiB
// chunk costs more than the chunk. The response streams one frame per
// requested digest, in request order:
//
//	<digest> <n>\n<n bytes: the chunk's zstd bytes, as GET .../chunks/{digest} sends them>
//	<digest> missing\n            (referenced by a version, but absent from the blob store)
//
// A response that ends before its last frame was cut off (the server aborts
// the connection on a storage error mid-stream): ask again for the rest.
const (
	// MaxBatchChunks bounds the digests of one batch request.
	MaxBatchChunks = 1024
	// BatchContentType is the media type of a batch response.
	BatchContentType = "application/vnd.unikube.chunk-batch"
	// batchReadAhead is how many chunks are read from the blob store ahead of
	// the one being written (S3 round trips overlap instead of adding up).
	batchReadAhead = 4
	// maxStoredChunk bounds a stored chunk's size read into memory.
	maxStoredChunk = 2 * statepkg.MaxChunkSize
)

// batchItem is one chunk loaded for the response.
type batchItem struct {
	digest  string
	buf     *[]byte // pooled; nil when missing or failed
	missing bool
	err     error
}

var chunkBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

// getChunkBatch streams many chunks in one response (see the frame format
// above). Access is GET's, checked for every digest before anything is sent:
// applier, or a job token for the version the chunks belong to.
func (s *Server) getChunkBatch(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.mayReadChunks(r, project, state)
	}
	var req apitypes.BatchRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		err = validateBatch(req.Digests)
	}
	if err == nil {
		err = s.readableChunks(r, project, state, req.Digests)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}

	if sz, ok := s.blobs.(blob.Sizer); ok {
		s.sendBatchSized(w, r, sz, req.Digests)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// order carries, in request order, one channel per chunk being loaded;
	// its capacity bounds the chunks loaded ahead of the writer.
	order := make(chan chan batchItem, batchReadAhead)
	go func() {
		defer close(order)
		for _, d := range req.Digests {
			ch := make(chan batchItem, 1)
			select {
			case order <- ch:
			case <-ctx.Done():
				return
			}
			go func() { ch <- s.loadChunk(ctx, d) }()
		}
	}()

	var line []byte
	first := true
	for ch := range order {
		it := <-ch
		if it.err != nil {
			if first {
				s.fail(w, r, fmt.Errorf("read chunk %s: %w", it.digest, it.err))
				return
			}
			// The status is sent: cut the response off, so the client sees a
			// truncated stream and asks again for the rest.
			s.log.Error("batch download aborted", "path", r.URL.Path, "chunk", it.digest, "error", it.err.Error())
			panic(http.ErrAbortHandler)
		}
		if first {
			h := w.Header()
			h.Set("Content-Type", BatchContentType)
			h.Set("X-Unikube-Chunks", strconv.Itoa(len(req.Digests)))
			w.WriteHeader(http.StatusOK)
			first = false
		}
		line = append(line[:0], it.digest...)
		if it.missing {
			line = append(line, " missing\n"...)
		} else {
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(len(*it.buf)), 10)
			line = append(line, '\n')
		}
		_, err := w.Write(line)
		if err == nil && it.buf != nil {
			_, err = w.Write(*it.buf)
			s.metrics.chunkOut.Inc()
		}
		if it.buf != nil {
			chunkBufPool.Put(it.buf)
		}
		if err != nil {
			return // the client went away
		}
	}
}

// validateBatch checks the digest list: present, not too long, well formed.
func validateBatch(digests []string) error {
	switch {
	case len(digests) == 0:
		return errf(http.StatusBadRequest, "digests: the list is empty; name the chunks to download")
	case len(digests) > MaxBatchChunks:
		return errf(http.StatusBadRequest, "digests: %d chunks in one batch, the limit is %d; split the list", len(digests), MaxBatchChunks)
	}
	for i, d := range digests {
		if _, err := statepkg.ParseDigest(d); err != nil {
			return errf(http.StatusBadRequest, "digests[%d]: %v", i, err)
		}
	}
	return nil
}

// loadChunk reads a stored chunk into a pooled buffer.
func (s *Server) loadChunk(ctx context.Context, digest string) batchItem {
	obj, err := s.blobs.Open(ctx, digest)
	if errors.Is(err, blob.ErrNotFound) {
		return batchItem{digest: digest, missing: true}
	}
	if err != nil {
		return batchItem{digest: digest, err: err}
	}
	defer obj.Close()
	size := obj.Info().Size
	if size < 0 || size > maxStoredChunk {
		return batchItem{digest: digest, err: fmt.Errorf("stored chunk is %d bytes, more than a chunk can be", size)}
	}
	bp, _ := chunkBufPool.Get().(*[]byte)
	if bp == nil || int64(cap(*bp)) < size {
		b := make([]byte, 0, size)
		bp = &b
	}
	buf := (*bp)[:size]
	if _, err := io.ReadFull(obj, buf); err != nil {
		return batchItem{digest: digest, err: err}
	}
	*bp = buf
	return batchItem{digest: digest, buf: bp}
}

// sendBatchSized serves a batch from a store that knows chunk sizes (the
// filesystem): the sizes first, so the response has a Content-Length and
// each chunk file goes to the socket with sendfile, not through memory.
func (s *Server) sendBatchSized(w http.ResponseWriter, r *http.Request, sz blob.Sizer, digests []string) {
	ctx := r.Context()
	sizes := make([]int64, len(digests)) // -1: missing
	var total int64
	for i, d := range digests {
		n, err := sz.Size(ctx, d)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			n = -1
			total += int64(len(d) + len(" missing\n"))
		case err != nil:
			s.fail(w, r, fmt.Errorf("read chunk %s: %w", d, err))
			return
		case n > maxStoredChunk:
			s.fail(w, r, fmt.Errorf("stored chunk %s is %d bytes, more than a chunk can be", d, n))
			return
		default:
			total += int64(len(d)+2+len(strconv.FormatInt(n, 10))) + n
		}
		sizes[i] = n
	}
	h := w.Header()
	h.Set("Content-Type", BatchContentType)
	h.Set("X-Unikube-Chunks", strconv.Itoa(len(digests)))
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(http.StatusOK)
	var line []byte
	for i, d := range digests {
		line = append(line[:0], d...)
		if sizes[i] < 0 {
			line = append(line, " missing\n"...)
		} else {
			line = append(line, ' ')
			line = strconv.AppendInt(line, sizes[i], 10)
			line = append(line, '\n')
		}
		if _, err := w.Write(line); err != nil {
			return // the client went away
		}
		if sizes[i] < 0 {
			continue
		}
		if err := s.copyChunk(ctx, w, d, sizes[i]); err != nil {
			// The length is promised: cut the response off, so the client
			// sees a truncated stream and asks again for the rest.
			s.log.Error("batch download aborted", "path", r.URL.Path, "chunk", d, "error", err.Error())
			panic(http.ErrAbortHandler)
		}
		s.metrics.chunkOut.Inc()
	}
}

// copyChunk sends exactly size bytes of a stored chunk to w (with sendfile
// when it is a file).
func (s *Server) copyChunk(ctx context.Context, w io.Writer, digest string, size int64) error {
	obj, err := s.blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Info().Size != size {
		return fmt.Errorf("chunk changed size while being sent (%d, then %d bytes)", size, obj.Info().Size)
	}
	var src io.Reader = obj
	if f, ok := obj.(interface{ File() *os.File }); ok {
		src = f.File()
	}
	n, err := io.Copy(w, io.LimitReader(src, size))
	if err == nil && n != size {
		err = fmt.Errorf("sent %d of %d bytes", n, size)
	}
	return err
}
