// Package drivertest holds helpers for driver tests: capture through the real
// chunking into a real store, and stores that fail on purpose.
package drivertest

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Capture runs d.Capture into statepkg.WriteComponent, streaming, and returns
// the stored component.
func Capture(t testing.TB, d driver.Driver, src driver.Source, store statepkg.ChunkStore, name string) statepkg.Component {
	t.Helper()
	c, err := CaptureErr(context.Background(), d, src, store, name)
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	return c
}

// CaptureErr is Capture returning the error.
func CaptureErr(ctx context.Context, d driver.Driver, src driver.Source, store statepkg.ChunkStore, name string) (statepkg.Component, error) {
	pr, pw := io.Pipe()
	var res driver.CaptureResult
	errc := make(chan error, 1)
	go func() {
		var err error
		res, err = d.Capture(ctx, src, pw, nil)
		pw.CloseWithError(err)
		errc <- err
	}()
	c, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: name, Kind: d.Kind()}, pr, statepkg.WriteOptions{})
	pr.CloseWithError(io.ErrClosedPipe)
	if cerr := <-errc; cerr != nil {
		return c, cerr
	}
	if err != nil {
		return c, err
	}
	c.Format, c.Files, c.Meta = res.Format, res.Files, res.Meta
	return c, c.Validate()
}

// NewStore returns a DirStore in a temp dir.
func NewStore(t testing.TB) *statepkg.DirStore {
	t.Helper()
	s, err := statepkg.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Restore restores c from store onto target URL.
func Restore(ctx context.Context, d driver.Driver, c statepkg.Component, store statepkg.ChunkStore, url string, opts map[string]string) (driver.ComponentResult, error) {
	return d.Restore(ctx, c, driver.StoreSource{Store: store, Component: c}, driver.Target{URL: url, Options: opts, State: "test/state", Digest: c.Digest}, nil)
}

// CountingStore counts Get calls.
type CountingStore struct {
	statepkg.ChunkStore
	Gets atomic.Int64
}

// Get implements statepkg.ChunkStore.
func (s *CountingStore) Get(ctx context.Context, d string) ([]byte, error) {
	s.Gets.Add(1)
	return s.ChunkStore.Get(ctx, d)
}

// CorruptStore flips a byte in the named chunk.
type CorruptStore struct {
	statepkg.ChunkStore
	Digest string
}

// Get implements statepkg.ChunkStore.
func (s CorruptStore) Get(ctx context.Context, d string) ([]byte, error) {
	b, err := s.ChunkStore.Get(ctx, d)
	if err == nil && d == s.Digest {
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 0xff
	}
	return b, err
}

// CancelStore cancels the context after After chunks were served.
type CancelStore struct {
	statepkg.ChunkStore
	After  int
	Cancel context.CancelFunc
	mu     sync.Mutex
	n      int
}

// Get implements statepkg.ChunkStore.
func (s *CancelStore) Get(ctx context.Context, d string) ([]byte, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if n > s.After {
		s.Cancel()
		return nil, context.Canceled
	}
	return s.ChunkStore.Get(ctx, d)
}
