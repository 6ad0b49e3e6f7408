// Package blob stores chunk bytes (zstd-compressed, content-addressed) on the
// local filesystem or in an S3-compatible bucket.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound is returned by Open for a chunk that is not stored.
var ErrNotFound = errors.New("chunk not stored")

// Info describes one stored chunk.
type Info struct {
	Digest  string
	Size    int64
	ModTime time.Time
}

// Object is an open stored chunk; Seek makes HTTP Range requests cheap.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store holds chunks keyed by "sha256:<hex>". Put is atomic (a reader never
// sees a partial chunk) and idempotent.
type Store interface {
	Has(ctx context.Context, digest string) (bool, error)
	Put(ctx context.Context, digest string, data []byte) error
	Open(ctx context.Context, digest string) (Object, error)
	Delete(ctx context.Context, digest string) error
	// Walk calls fn for every stored chunk, in no particular order.
	Walk(ctx context.Context, fn func(Info) error) error
	// Ping checks the store is reachable and writable (for /readyz).
	Ping(ctx context.Context) error
	String() string
}

// Sizer is an optional Store extension for stores that tell a chunk's size
// cheaply (a stat): ErrNotFound when it is not stored.
type Sizer interface {
	Size(ctx context.Context, digest string) (int64, error)
}

// Open returns the store named by spec: "" (filesystem under dataDir/chunks),
// "file:///path" or a plain path, or "s3://bucket[/prefix]?endpoint=...&region=...".
// S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (and AWS_SESSION_TOKEN), never from the spec.
func Open(ctx context.Context, spec, dataDir string, getenv func(string) string) (Store, error) {
	switch {
	case spec == "":
		return NewFS(dataDir + "/chunks")
	case strings.HasPrefix(spec, "file://"):
		return NewFS(strings.TrimPrefix(spec, "file://"))
	case strings.HasPrefix(spec, "s3://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("parse --blob-store: %w", err)
		}
		if u.User != nil {
			return nil, errors.New("--blob-store must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
		}
		q := u.Query()
		return NewS3(ctx, S3Config{
			Bucket:       u.Host,
			Prefix:       strings.Trim(u.Path, "/"),
			Endpoint:     q.Get("endpoint"),
			Region:       q.Get("region"),
			AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
			SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken: getenv("AWS_SESSION_TOKEN"),
			PathStyle:    q.Get("path_style") != "false",
		})
	case !strings.Contains(spec, "://"):
		return NewFS(spec)
	default:
		return nil, fmt.Errorf("unsupported --blob-store %q: use a directory, file:///dir or s3://bucket?endpoint=URL", spec)
	}
}

// hexOf checks a digest is "sha256:" plus 64 lowercase hex characters and
// returns the hex. The API validates digests first; this keeps a malformed
// one from ever becoming a file path or object key.
func hexOf(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("invalid chunk digest %q: want sha256:<64 hex>", digest)
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("invalid chunk digest %q: want lowercase hex", digest)
		}
	}
	return h, nil
}
