package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// ChunkStore is the platform's chunk store for one named state, as a
// statepkg.ChunkStore: the restore and capture cores stream through it.
type ChunkStore struct {
	c              *Client
	project, state string
}

var _ statepkg.ChunkStore = (*ChunkStore)(nil)

// Chunks returns the chunk store of project/state.
func (c *Client) Chunks(project, state string) *ChunkStore {
	return &ChunkStore{c: c, project: project, state: state}
}

func (s *ChunkStore) path(digest string) string {
	return pathf("/api/v1/projects/%s/states/%s/chunks/%s", s.project, s.state, digest)
}

// Has asks the server whether this state may use the chunk without
// uploading it: it is stored, and was uploaded to this state or is part of
// a version the caller may read (for readers: whether they may download
// it). A chunk only another project holds answers false: upload it.
func (s *ChunkStore) Has(ctx context.Context, digest string) (bool, error) {
	if _, err := statepkg.ParseDigest(digest); err != nil {
		return false, err
	}
	resp, err := s.c.do(ctx, request{method: http.MethodHead, path: s.path(digest)})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// Put uploads a chunk's compressed bytes; the server verifies them against
// the digest. Uploading a stored chunk again succeeds.
func (s *ChunkStore) Put(ctx context.Context, digest string, compressed []byte) error {
	if _, err := statepkg.ParseDigest(digest); err != nil {
		return err
	}
	return s.c.doJSON(ctx, request{method: http.MethodPut, path: s.path(digest), body: compressed}, nil)
}

// PutForReadBack uploads a chunk like Put and asks the platform to let the
// state's maintainers read it before a version references it: a capture's
// agent Jobs upload each component's description so, for the executor to
// read back and commit.
func (s *ChunkStore) PutForReadBack(ctx context.Context, digest string, compressed []byte) error {
	if _, err := statepkg.ParseDigest(digest); err != nil {
		return err
	}
	return s.c.doJSON(ctx, request{method: http.MethodPut, path: s.path(digest), query: url.Values{"read_back": {"true"}}, body: compressed}, nil)
}

// Get downloads a chunk's compressed bytes. A transfer broken off midway
// resumes with a Range request from the bytes already received. A chunk the
// server does not have gives an error wrapping statepkg.ErrMissingChunk.
// Get does not decompress; callers verify with statepkg.DecodeChunk (the
// statepkg readers and DownloadChunks do).
func (s *ChunkStore) Get(ctx context.Context, digest string) ([]byte, error) {
	if _, err := statepkg.ParseDigest(digest); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		h := http.Header{}
		if buf.Len() > 0 {
			h.Set("Range", "bytes="+strconv.Itoa(buf.Len())+"-")
		}
		resp, err := s.c.do(ctx, request{method: http.MethodGet, path: s.path(digest), header: h})
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s: %w", statepkg.ErrMissingChunk, digest, err)
		}
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			buf.Reset() // the server sent everything (no Range support or first try)
		}
		if resp.ContentLength > 0 && resp.ContentLength <= statepkg.MaxChunkSize*2 {
			buf.Grow(int(resp.ContentLength))
		}
		_, err = io.Copy(&buf, resp.Body)
		resp.Body.Close()
		if err == nil {
			return buf.Bytes(), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
	}
	return nil, fmt.Errorf("download chunk %s: %w", digest, lastErr)
}

// TransferOptions tune UploadChunks and DownloadChunks.
type TransferOptions struct {
	// Parallelism overrides the client's (default 8).
	Parallelism int
	// Progress, if set, is called after each chunk with the chunk's
	// uncompressed size and whether it was transferred (false: skipped).
	Progress func(ch statepkg.Chunk, transferred bool)
}

// TransferStats counts what a transfer did.
type TransferStats struct {
	Chunks      int   // distinct chunks in the manifest
	Transferred int   // chunks sent or fetched
	Skipped     int   // chunks the other side already had
	Bytes       int64 // compressed bytes moved
}

func distinctChunks(m *statepkg.Manifest) []statepkg.Chunk {
	seen := map[string]bool{}
	var out []statepkg.Chunk
	for _, c := range m.Components {
		for _, ch := range c.Chunks {
			if !seen[ch.Digest] {
				seen[ch.Digest] = true
				out = append(out, ch)
			}
		}
	}
	return out
}

func (c *Client) par(o TransferOptions) int {
	if o.Parallelism > 0 {
		return o.Parallelism
	}
	return c.parallelism
}

// UploadChunks uploads, in parallel, the manifest's chunks from src that the
// server does not have. Re-running it after an interruption resumes: chunks
// already stored are skipped.
func (c *Client) UploadChunks(ctx context.Context, project, state string, m *statepkg.Manifest, src statepkg.ChunkStore, opts TransferOptions) (TransferStats, error) {
	return c.uploadChunks(ctx, project, state, distinctChunks(m), src, opts, true)
}

func (c *Client) uploadChunks(ctx context.Context, project, state string, chunks []statepkg.Chunk, src statepkg.ChunkStore, opts TransferOptions, check bool) (TransferStats, error) {
	dst := c.Chunks(project, state)
	st := TransferStats{Chunks: len(chunks)}
	var sent, skipped, nbytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.par(opts))
	for _, ch := range chunks {
		g.Go(func() error {
			if check {
				ok, err := dst.Has(gctx, ch.Digest)
				if err != nil {
					return fmt.Errorf("check chunk %s: %w", ch.Digest, err)
				}
				if ok {
					skipped.Add(1)
					if opts.Progress != nil {
						opts.Progress(ch, false)
					}
					return nil
				}
			}
			data, err := src.Get(gctx, ch.Digest)
			if err != nil {
				return fmt.Errorf("read chunk %s from the local store: %w", ch.Digest, err)
			}
			if err := dst.Put(gctx, ch.Digest, data); err != nil {
				return fmt.Errorf("upload chunk %s: %w", ch.Digest, err)
			}
			sent.Add(1)
			nbytes.Add(int64(len(data)))
			if opts.Progress != nil {
				opts.Progress(ch, true)
			}
			return nil
		})
	}
	err := g.Wait()
	st.Transferred, st.Skipped, st.Bytes = int(sent.Load()), int(skipped.Load()), nbytes.Load()
	return st, err
}

// PushVersion uploads what the server lacks and commits the version: it
// tries the commit first (the server answers 409 with the missing chunks),
// uploads exactly those, and commits again. Interrupted, it can simply be
// run again.
func (c *Client) PushVersion(ctx context.Context, project, state, tag string, m *statepkg.Manifest, src statepkg.ChunkStore, opts TransferOptions) (Version, TransferStats, error) {
	all := distinctChunks(m)
	byDigest := make(map[string]statepkg.Chunk, len(all))
	for _, ch := range all {
		byDigest[ch.Digest] = ch
	}
	var total TransferStats
	total.Chunks = len(all)
	for attempt := 0; attempt < 3; attempt++ {
		v, err := c.CommitVersion(ctx, project, state, tag, m)
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || len(apiErr.Missing) == 0 {
			total.Skipped = total.Chunks - total.Transferred
			return v, total, err
		}
		missing := make([]statepkg.Chunk, 0, len(apiErr.Missing))
		for _, d := range apiErr.Missing {
			ch, ok := byDigest[d]
			if !ok {
				return Version{}, total, fmt.Errorf("server reports chunk %s missing, which the manifest does not name", d)
			}
			missing = append(missing, ch)
		}
		st, err := c.uploadChunks(ctx, project, state, missing, src, opts, false)
		total.Transferred += st.Transferred
		total.Bytes += st.Bytes
		if err != nil {
			return Version{}, total, err
		}
	}
	return Version{}, total, fmt.Errorf("commit of %s/%s kept reporting missing chunks after uploading them: is garbage collection running with a zero grace period?", project, state)
}

// Download batches: DownloadChunks keeps no chunk after storing it, so its
// batches can be larger than a streaming reader's.
const (
	downloadBatchChunks = 256
	downloadBatchBytes  = 16 << 20
)

// DownloadChunks fetches the manifest's chunks that dst does not have yet,
// in batches (several requests in flight), verifying each against its
// digest before storing it. Re-running it resumes.
func (c *Client) DownloadChunks(ctx context.Context, project, state string, m *statepkg.Manifest, dst statepkg.ChunkStore, opts TransferOptions) (TransferStats, error) {
	chunks := distinctChunks(m)
	st := TransferStats{Chunks: len(chunks)}
	var need []statepkg.Chunk
	for _, ch := range chunks {
		ok, err := dst.Has(ctx, ch.Digest)
		if err != nil {
			return st, err
		}
		if !ok {
			need = append(need, ch)
			continue
		}
		st.Skipped++
		if opts.Progress != nil {
			opts.Progress(ch, false)
		}
	}
	src := c.Chunks(project, state)
	codec, err := statepkg.NewCodec(c.par(opts))
	if err != nil {
		return st, err
	}
	defer codec.Close()
	var got, nbytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.par(opts))
	for _, batch := range downloadBatches(need) {
		g.Go(func() error {
			digests := make([]string, len(batch))
			for i, ch := range batch {
				digests[i] = ch.Digest
			}
			return src.GetBatch(gctx, digests, func(i int, data []byte) error {
				ch := batch[i]
				if _, err := codec.DecodeChunk(ch.Digest, data); err != nil {
					return fmt.Errorf("downloaded chunk %s: %w", ch.Digest, err)
				}
				if err := dst.Put(gctx, ch.Digest, data); err != nil {
					return fmt.Errorf("store chunk %s: %w", ch.Digest, err)
				}
				got.Add(1)
				nbytes.Add(int64(len(data)))
				if opts.Progress != nil {
					opts.Progress(ch, true)
				}
				return nil
			})
		})
	}
	err = g.Wait()
	st.Transferred, st.Bytes = int(got.Load()), nbytes.Load()
	return st, err
}

// downloadBatches cuts chunks into runs of at most downloadBatchChunks
// chunks and downloadBatchBytes uncompressed bytes.
func downloadBatches(chunks []statepkg.Chunk) [][]statepkg.Chunk {
	var out [][]statepkg.Chunk
	lo, size := 0, int64(0)
	for i, ch := range chunks {
		if i > lo && (i-lo >= downloadBatchChunks || size+ch.Size > downloadBatchBytes) {
			out = append(out, chunks[lo:i])
			lo, size = i, 0
		}
		size += ch.Size
	}
	if lo < len(chunks) {
		out = append(out, chunks[lo:])
	}
	return out
}
