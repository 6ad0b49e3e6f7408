package statepkg

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// batchStore is a MemoryStore that also answers GetBatch, counting calls;
// corrupt, if set, is a digest whose bytes it hands over damaged.
type batchStore struct {
	*MemoryStore
	calls   atomic.Int64
	corrupt string
}

func (b *batchStore) GetBatch(ctx context.Context, digests []string, fn func(int, []byte) error) error {
	b.calls.Add(1)
	for i, d := range digests {
		data, err := b.Get(ctx, d)
		if err != nil {
			return errors.New("batch failed somewhere") // names no chunk: readers must find out
		}
		if d == b.corrupt {
			data = append([]byte(nil), data...)
			data[len(data)/2] ^= 0xff
		}
		if err := fn(i, data); err != nil {
			return err
		}
	}
	return nil
}

func batchFixture(t *testing.T) (*batchStore, Component, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 6<<20)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	mem := NewMemoryStore()
	c, _, err := WriteComponent(context.Background(), mem, Component{Name: "vol", Kind: KindVolume, Format: "tar"}, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &batchStore{MemoryStore: mem}, c, data
}

// TestRead_BatchGetterFetchesRunsOfChunks: with a ChunkBatchGetter, the
// stream, ranges and visits read the same bytes with far fewer calls.
func TestRead_BatchGetterFetchesRunsOfChunks(t *testing.T) {
	ctx := context.Background()
	store, c, data := batchFixture(t)
	var got bytes.Buffer
	if err := ReadComponent(ctx, store, c, &got, ReadOptions{Concurrency: 3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("stream differs")
	}
	if calls := store.calls.Load(); calls == 0 || calls > int64(len(c.Chunks)/8) {
		t.Fatalf("%d GetBatch calls for %d chunks", calls, len(c.Chunks))
	}
	got.Reset()
	off, n := int64(1<<20+123), int64(3<<20)
	if err := ReadRange(ctx, store, c, off, n, &got, ReadOptions{}); err != nil || !bytes.Equal(got.Bytes(), data[off:off+n]) {
		t.Fatalf("range: %v", err)
	}
	var mu sync.Mutex
	out := make([]byte, len(data))
	seen := 0
	if err := VisitChunks(ctx, store, c.Name, c.Chunks, ReadOptions{}, func(ch Chunk, b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		copy(out[ch.Offset:], b)
		seen++
		return nil
	}); err != nil || seen != len(c.Chunks) || !bytes.Equal(out, data) {
		t.Fatalf("visit: %v, %d of %d chunks", err, seen, len(c.Chunks))
	}
}

// TestRead_BatchFailureNamesTheChunk: a missing or damaged chunk fails
// the read with a ChunkError naming exactly it, after exactly the chunks
// before it were written.
func TestRead_BatchFailureNamesTheChunk(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want error
	}{{"missing", ErrMissingChunk}, {"damaged", ErrCorruptChunk}} {
		t.Run(tc.name, func(t *testing.T) {
			store, c, data := batchFixture(t)
			bad := c.Chunks[len(c.Chunks)*2/3]
			if tc.name == "missing" {
				if err := store.Delete(ctx, bad.Digest); err != nil {
					t.Fatal(err)
				}
			} else {
				store.corrupt = bad.Digest
			}
			var got bytes.Buffer
			err := ReadComponent(ctx, store, c, &got, ReadOptions{})
			var ce *ChunkError
			if !errors.As(err, &ce) || ce.Chunk != bad.Digest || !errors.Is(err, tc.want) {
				t.Fatalf("want a ChunkError naming %s wrapping %v, got %v", bad.Digest, tc.want, err)
			}
			if !bytes.Equal(got.Bytes(), data[:bad.Offset]) {
				t.Fatalf("wrote %d bytes before the failure, want exactly the %d before the bad chunk", got.Len(), bad.Offset)
			}
			err = VisitChunks(ctx, store, c.Name, c.Chunks, ReadOptions{}, func(Chunk, []byte) error { return nil })
			if !errors.As(err, &ce) || ce.Chunk != bad.Digest {
				t.Fatalf("visit: want a ChunkError naming %s, got %v", bad.Digest, err)
			}
			// A failing consumer stops the read with its own error.
			stop := errors.New("disk full")
			if err := ReadComponent(ctx, store, c, failingWriter{stop}, ReadOptions{}); !errors.Is(err, stop) {
				t.Fatalf("failing writer: %v", err)
			}
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

var _ io.Writer = failingWriter{}
