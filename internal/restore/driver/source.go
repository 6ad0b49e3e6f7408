package driver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Redact returns u with any password replaced, for plans, logs and errors.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		// A password with a character a URL must escape (% # /) is what
		// often makes a URL unparsable: hide all before the host.
		start := 0
		if i := strings.Index(u, "://"); i >= 0 {
			start = i + 3
		}
		if j := strings.LastIndex(u, "@"); j >= start {
			return u[:start] + "xxxxx" + u[j:]
		}
		return u
	}
	if p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	}
	return p.String()
}

// LocalPath returns the filesystem path of a file:// URL or a plain path, and
// false for any other URL.
func LocalPath(u string) (string, bool) {
	if strings.HasPrefix(u, "file://") {
		p, err := url.Parse(u)
		if err != nil {
			return "", false
		}
		return p.Path, true
	}
	if strings.Contains(u, "://") {
		return "", false
	}
	return u, true
}

// KindOf guesses the component kind of a source or target: by URL scheme,
// or for a local path by what the file starts with.
func KindOf(u string) (statepkg.Kind, error) {
	if p, ok := LocalPath(u); ok {
		return kindOfPath(p)
	}
	scheme, _, _ := strings.Cut(u, "://")
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return statepkg.KindPostgres, nil
	case "mysql", "mariadb":
		return statepkg.KindMySQL, nil
	case "redis", "rediss":
		return statepkg.KindRedis, nil
	case "http", "https":
		return statepkg.KindOpenSearch, nil // the one kind served over HTTP
	}
	return "", fmt.Errorf("unsupported source %q: use postgres://, mysql://, redis://, http(s):// (OpenSearch, Elasticsearch), file:// or a local path", Redact(u))
}

func kindOfPath(p string) (statepkg.Kind, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", p, err)
	}
	if st.IsDir() {
		return statepkg.KindVolume, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", p, err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PGDMP")):
		return statepkg.KindPostgres, nil
	case bytes.HasPrefix(head, []byte("REDIS")):
		return statepkg.KindRedis, nil
	case bytes.HasPrefix(head, []byte(RedisDumpMagic)):
		return statepkg.KindRedis, nil
	case bytes.HasPrefix(head, []byte(`{"unikube":"opensearch-dump"`)):
		return statepkg.KindOpenSearch, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return statepkg.KindVolume, nil // a tar archive of a volume
	}
	text := string(head)
	switch {
	case strings.Contains(text, "MySQL dump") || strings.Contains(text, "MariaDB dump") || strings.Contains(text, "/*!40101"):
		return statepkg.KindMySQL, nil
	case strings.Contains(text, "PostgreSQL database dump") || strings.Contains(text, "SET statement_timeout") || strings.EqualFold(filepath.Ext(p), ".psql"):
		return statepkg.KindPostgres, nil
	}
	return "", fmt.Errorf("source %s: cannot tell what kind of data this file holds (expected a pg_dump archive or .sql, a mysqldump .sql, a Redis .rdb, or a directory); name the kind explicitly", p)
}

// RedisDumpMagic starts every "redis-dump" stream.
const RedisDumpMagic = "UNIKUBE-REDIS-DUMP\x001\n"

// ReaderAtSource is a ChunkSource over an io.ReaderAt of the uncompressed
// stream. It serves tests and local files; it does no verification.
type ReaderAtSource struct {
	R    io.ReaderAt
	Size int64
}

// Open implements ChunkSource.
func (s ReaderAtSource) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bufio.NewReaderSize(io.NewSectionReader(s.R, 0, s.Size), 1<<20)), nil
}

// ReadRange implements ChunkSource.
func (s ReaderAtSource) ReadRange(_ context.Context, off, n int64, w io.Writer) error {
	if off < 0 || n < 0 || off+n > s.Size {
		return fmt.Errorf("range %d+%d outside stream of %d bytes", off, n, s.Size)
	}
	_, err := io.Copy(w, io.NewSectionReader(s.R, off, n))
	return err
}

// StoreSource is the ChunkSource of one component in a chunk store: every
// chunk is fetched, decompressed and checked against its digest before any
// of its bytes are handed out.
type StoreSource struct {
	Store     statepkg.ChunkStore
	Component statepkg.Component
	Options   statepkg.ReadOptions
}

// stream returns the component without its file index: reading bytes does
// not need it, and statepkg validates the component on every call.
func (s StoreSource) stream() statepkg.Component {
	c := s.Component
	c.Files = nil
	return c
}

// Open implements ChunkSource.
func (s StoreSource) Open(ctx context.Context) (io.ReadCloser, error) {
	return statepkg.OpenComponent(ctx, s.Store, s.stream(), s.Options), nil
}

// ReadRange implements ChunkSource.
func (s StoreSource) ReadRange(ctx context.Context, off, n int64, w io.Writer) error {
	if off == 0 && n == s.Component.Size {
		// The whole stream: also check the stream digest at the end.
		return statepkg.ReadComponent(ctx, s.Store, s.stream(), w, s.Options)
	}
	return statepkg.ReadRange(ctx, s.Store, s.stream(), off, n, w, s.Options)
}

// Span is a byte range [Off, End) of a component stream.
type Span struct{ Off, End int64 }

// SpanReader is implemented by ChunkSources that can fetch several ranges
// in one pipelined pass.
type SpanReader interface {
	// ReadSpans writes the bytes of each span, in order, back to back.
	ReadSpans(ctx context.Context, spans []Span, w io.Writer) error
}

// ReadSpans implements SpanReader. When the spans lie on chunk boundaries
// it reads exactly the chunks they cover in one pass, fetching ahead in
// parallel across span gaps; otherwise it reads span by span.
func (s StoreSource) ReadSpans(ctx context.Context, spans []Span, w io.Writer) error {
	c := s.stream()
	var sub []statepkg.Chunk
	var off int64
	i := 0
	for _, sp := range spans {
		for i < len(c.Chunks) && c.Chunks[i].Offset < sp.Off {
			i++
		}
		if i == len(c.Chunks) || c.Chunks[i].Offset != sp.Off {
			return s.readSpansOneByOne(ctx, spans, w)
		}
		for i < len(c.Chunks) && c.Chunks[i].Offset < sp.End {
			ch := c.Chunks[i]
			ch.Offset = off
			off += ch.Size
			sub = append(sub, ch)
			i++
		}
		if i > 0 && c.Chunks[i-1].Offset+c.Chunks[i-1].Size != sp.End {
			return s.readSpansOneByOne(ctx, spans, w)
		}
	}
	if off == 0 {
		return nil
	}
	// A component made of just the chunks needed; ReadRange verifies each
	// chunk and, unlike ReadComponent, does not check a whole-stream digest.
	c.Chunks, c.Size = sub, off
	return statepkg.ReadRange(ctx, s.Store, c, 0, off, w, s.Options)
}

func (s StoreSource) readSpansOneByOne(ctx context.Context, spans []Span, w io.Writer) error {
	for _, sp := range spans {
		if err := s.ReadRange(ctx, sp.Off, sp.End-sp.Off, w); err != nil {
			return err
		}
	}
	return nil
}

// ChunkVisitor is implemented by ChunkSources that can hand out chunks in
// parallel, unordered: drivers that can place bytes anywhere (files written
// at offsets) then use every core for fetching, verifying and writing.
type ChunkVisitor interface {
	// VisitChunks fetches and verifies chunks (a subset of the component's
	// list, with their stream offsets) and calls fn concurrently with each
	// one's bytes, which fn must not keep.
	VisitChunks(ctx context.Context, chunks []statepkg.Chunk, fn func(statepkg.Chunk, []byte) error) error
}

// VisitChunks implements ChunkVisitor.
func (s StoreSource) VisitChunks(ctx context.Context, chunks []statepkg.Chunk, fn func(statepkg.Chunk, []byte) error) error {
	return statepkg.VisitChunks(ctx, s.Store, s.Component.Name, chunks, s.Options, fn)
}
