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
	if err != nil || p.User == nil {
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
	}
	return "", fmt.Errorf("unsupported source %q: use postgres://, mysql://, redis://, file:// or a local path", Redact(u))
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

// Open implements ChunkSource.
func (s StoreSource) Open(ctx context.Context) (io.ReadCloser, error) {
	return statepkg.OpenComponent(ctx, s.Store, s.Component, s.Options), nil
}

// ReadRange implements ChunkSource.
func (s StoreSource) ReadRange(ctx context.Context, off, n int64, w io.Writer) error {
	if off == 0 && n == s.Component.Size {
		// The whole stream: also check the stream digest at the end.
		return statepkg.ReadComponent(ctx, s.Store, s.Component, w, s.Options)
	}
	return statepkg.ReadRange(ctx, s.Store, s.Component, off, n, w, s.Options)
}
