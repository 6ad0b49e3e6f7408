package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// The batch download protocol (see the server's getChunkBatch and
// api/openapi.json): POST {"digests": [...]} to .../chunks:batch; the
// response streams, per requested digest in order, "<digest> <n>\n" and n
// zstd bytes, or "<digest> missing\n".
const (
	// maxBatchChunks is the server's limit on digests per request; longer
	// lists are split.
	maxBatchChunks = 1024
	// batchContentType is the batch response's media type.
	batchContentType = "application/vnd.unikube.chunk-batch"
	// batchAttempts bounds the requests made for a batch cut off midway
	// without any progress in between.
	batchAttempts = 5
)

var _ statepkg.ChunkBatchGetter = (*ChunkStore)(nil)

// errTruncated marks a batch response that ended or broke before its last
// frame: the rest can be asked for again.
var errTruncated = errors.New("batch response cut off")

// callbackError carries an error of GetBatch's callback, returned as it is.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// GetBatch downloads the chunks named by digests with one request per up
// to 1024 of them and calls fn with each one's compressed bytes, in the
// order given; fn must not keep the bytes after it returns. A response cut
// off midway is resumed by asking for the rest. A chunk the server does not
// have, or that is not part of a version the token may read, gives an error
// wrapping statepkg.ErrMissingChunk. An error of fn stops the download and
// is returned as it is. Against a server without batch downloads it falls
// back to one Get per chunk.
func (s *ChunkStore) GetBatch(ctx context.Context, digests []string, fn func(i int, compressed []byte) error) error {
	for _, d := range digests {
		if _, err := statepkg.ParseDigest(d); err != nil {
			return err
		}
	}
	var buf []byte
	done, failures := 0, 0
	for done < len(digests) {
		if s.c.noBatch.Load() {
			return s.getEach(ctx, digests, done, fn)
		}
		end := min(done+maxBatchChunks, len(digests))
		n, err := s.getBatchOnce(ctx, digests[done:end], done, &buf, fn)
		if n > 0 {
			failures = 0
		}
		done += n
		var cbErr callbackError
		switch {
		case err == nil:
		case errors.As(err, &cbErr):
			return cbErr.err
		case errors.Is(err, errTruncated) && ctx.Err() == nil:
			if failures++; failures >= batchAttempts {
				return fmt.Errorf("download %d chunks: %w", end-done, err)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return err
		}
	}
	return nil
}

// getEach is GetBatch one chunk at a time, for servers without batches.
func (s *ChunkStore) getEach(ctx context.Context, digests []string, from int, fn func(int, []byte) error) error {
	for i := from; i < len(digests); i++ {
		data, err := s.Get(ctx, digests[i])
		if err != nil {
			return err
		}
		if err := fn(i, data); err != nil {
			return err
		}
	}
	return nil
}

// getBatchOnce makes one batch request and hands each frame to fn (with
// its index offset by base). It returns how many chunks it delivered.
func (s *ChunkStore) getBatchOnce(ctx context.Context, digests []string, base int, buf *[]byte, fn func(int, []byte) error) (int, error) {
	path := pathf("/api/v1/projects/%s/states/%s/chunks:batch", s.project, s.state)
	resp, err := s.c.do(ctx, request{method: http.MethodPost, path: path, body: apitypes.BatchRequest{Digests: digests}, idempotent: true})
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && len(apiErr.Missing) > 0:
		return 0, fmt.Errorf("%w: %d chunks, e.g. %s: %w", statepkg.ErrMissingChunk, len(apiErr.Missing), apiErr.Missing[0], err)
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusMethodNotAllowed) && strings.HasPrefix(apiErr.Message, "no route"):
		s.c.noBatch.Store(true) // an older server: the caller falls back
		return 0, nil
	case err != nil:
		return 0, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != batchContentType {
		return 0, fmt.Errorf("batch download: the server answered %q, want %s", ct, batchContentType)
	}
	// A large buffer: fewer, larger socket reads (it measured faster than
	// reading 64 KiB chunks straight into their buffers).
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	for i, want := range digests {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return i, fmt.Errorf("%w after %d of %d chunks: %w", errTruncated, i, len(digests), err)
		}
		got, size, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(" "))
		if !ok || string(got) != want {
			return i, fmt.Errorf("batch download: frame %d is %q, want chunk %s: the server broke the protocol", i, truncateLine(line), want)
		}
		if string(size) == "missing" {
			return i, fmt.Errorf("%w: %s: the server's blob store lost it; re-upload the version", statepkg.ErrMissingChunk, want)
		}
		n, err := strconv.ParseInt(string(size), 10, 64)
		if err != nil || n < 0 || n > 2*statepkg.MaxChunkSize {
			return i, fmt.Errorf("batch download: frame %d has size %q: the server broke the protocol", i, truncateLine(size))
		}
		if int64(cap(*buf)) < n {
			*buf = make([]byte, n)
		}
		data := (*buf)[:n]
		if _, err := io.ReadFull(br, data); err != nil {
			return i, fmt.Errorf("%w in chunk %d of %d: %w", errTruncated, i, len(digests), err)
		}
		if err := fn(base+i, data); err != nil {
			return i, callbackError{err}
		}
	}
	return len(digests), nil
}

func truncateLine(b []byte) string {
	if len(b) > 100 {
		b = b[:100]
	}
	return string(bytes.ToValidUTF8(b, nil))
}
