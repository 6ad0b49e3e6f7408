package statepkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// seededReader returns n deterministic pseudo-random bytes.
func seededReader(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func seededBytes(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	b, err := io.ReadAll(seededReader(seed, int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testSpec = Component{Name: "db", Kind: KindPostgres, Format: "pg_dump-custom", Meta: map[string]string{"serverVersion": "15"}}

func TestWriteReadComponent_RoundTrips(t *testing.T) {
	for _, size := range []int{0, 1, 1 << 20, 5<<20 + 17} {
		for _, storeName := range []string{"memory", "dir"} {
			t.Run(fmt.Sprintf("%s/%dB", storeName, size), func(t *testing.T) {
				ctx := t.Context()
				var store ChunkStore = NewMemoryStore()
				if storeName == "dir" {
					ds, err := NewDirStore(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					store = ds
				}
				data := seededBytes(t, uint64(size), size)
				var progress []int64
				c, stats, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(data), WriteOptions{
					Progress: func(n int64) { progress = append(progress, n) },
				})
				if err != nil {
					t.Fatalf("WriteComponent: %v", err)
				}
				if c.Name != testSpec.Name || c.Format != testSpec.Format || c.Meta["serverVersion"] != "15" {
					t.Fatalf("spec fields lost: %+v", c)
				}
				if c.Size != int64(size) || c.Digest != DigestBytes(data) || stats.Bytes != int64(size) {
					t.Fatalf("size/digest: %d %s, stats %+v", c.Size, c.Digest, stats)
				}
				if stats.Chunks != len(c.Chunks) || stats.NewChunks != len(c.Chunks) || (size > 0 && len(c.Chunks) == 0) {
					t.Fatalf("stats %+v for %d chunks", stats, len(c.Chunks))
				}
				if size > 0 && progress[len(progress)-1] != int64(size) {
					t.Fatalf("progress ended at %d", progress[len(progress)-1])
				}
				var out bytes.Buffer
				if err := ReadComponent(ctx, store, c, &out, ReadOptions{}); err != nil {
					t.Fatalf("ReadComponent: %v", err)
				}
				if !bytes.Equal(out.Bytes(), data) {
					t.Fatal("read back different bytes")
				}
				// Writing the same stream again stores nothing new.
				_, stats2, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(data), WriteOptions{})
				if err != nil || stats2.NewChunks != 0 || stats2.NewStoredBytes != 0 {
					t.Fatalf("second write: %+v, %v", stats2, err)
				}
				rc := OpenComponent(ctx, store, c, ReadOptions{})
				got, err := io.ReadAll(rc)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("OpenComponent: %v", err)
				}
				if err := rc.Close(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// hashWriter hashes what is written to it and counts it.
type hashWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

// peakHeap samples the live heap: it collects garbage first, so what it
// sees is what the pipeline holds on to, not what it has let go.
type peakHeap struct {
	mu   sync.Mutex
	peak uint64
}

func (p *peakHeap) sample() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.mu.Lock()
	p.peak = max(p.peak, ms.HeapAlloc)
	p.mu.Unlock()
}

func TestWriteReadComponent_200MiBInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB round trip skipped in -short mode")
	}
	const size = 200 << 20
	ctx := t.Context()
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	in := sha256.New()
	var peak peakHeap
	every := 0
	c, stats, err := WriteComponent(ctx, store, testSpec, io.TeeReader(seededReader(200, size), in), WriteOptions{
		Progress: func(int64) {
			if every++; every%100 == 0 {
				peak.sample()
			}
		},
	})
	if err != nil {
		t.Fatalf("WriteComponent: %v", err)
	}
	if c.Size != size || c.Digest != DigestPrefix+hexString(in.Sum(nil)) {
		t.Fatalf("component %d bytes, digest %s", c.Size, c.Digest)
	}
	t.Logf("200 MiB: %d chunks (mean %d KiB), stored %d MiB", stats.Chunks, size/stats.Chunks>>10, stats.StoredBytes>>20)

	out := &hashWriter{h: sha256.New()}
	every = 0
	if err := ReadComponent(ctx, store, c, out, ReadOptions{Progress: func(int64) {
		if every++; every%100 == 0 {
			peak.sample()
		}
	}}); err != nil {
		t.Fatalf("ReadComponent: %v", err)
	}
	if out.n != size || DigestPrefix+hexString(out.h.Sum(nil)) != c.Digest {
		t.Fatal("read back a different stream")
	}
	// The stream is 200 MiB; the pipeline holds a few chunks per worker plus
	// the zstd state and the chunk list.
	if grew := int64(peak.peak) - int64(base.HeapAlloc); grew > 32<<20 {
		t.Fatalf("live heap grew by %d MiB while streaming 200 MiB", grew>>20)
	}
	t.Logf("peak live heap growth %d MiB", (int64(peak.peak)-int64(base.HeapAlloc))>>20)
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// damage describes one way of breaking a stored chunk.
type damage struct {
	name string
	want error
	do   func(t *testing.T, store *DirStore, digest string)
}

var damages = []damage{
	{"corrupted", ErrCorruptChunk, func(t *testing.T, s *DirStore, d string) {
		p, _ := s.Path(d)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x55
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}},
	{"truncated", ErrTruncatedChunk, func(t *testing.T, s *DirStore, d string) {
		p, _ := s.Path(d)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()*2/3); err != nil {
			t.Fatal(err)
		}
	}},
	{"missing", ErrMissingChunk, func(t *testing.T, s *DirStore, d string) {
		if err := s.Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}},
	{"swapped", ErrCorruptChunk, func(t *testing.T, s *DirStore, d string) {
		// A valid zstd chunk, but of other bytes.
		_, other := EncodeChunk([]byte("some other chunk entirely"))
		p, _ := s.Path(d)
		if err := os.WriteFile(p, other, 0o644); err != nil {
			t.Fatal(err)
		}
	}},
}

func TestReadComponent_StopsBeforeFirstBadChunk(t *testing.T) {
	data := seededBytes(t, 7, 3<<20)
	for _, dm := range damages {
		for _, bad := range []string{"first", "middle", "last"} {
			t.Run(dm.name+"/"+bad, func(t *testing.T) {
				ctx := t.Context()
				store, err := NewDirStore(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				c, _, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(data), WriteOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Chunks) < 5 {
					t.Fatalf("only %d chunks", len(c.Chunks))
				}
				k := map[string]int{"first": 0, "middle": len(c.Chunks) / 2, "last": len(c.Chunks) - 1}[bad]
				dm.do(t, store, c.Chunks[k].Digest)

				for _, conc := range []int{1, 8} {
					var out bytes.Buffer
					err = ReadComponent(ctx, store, c, &out, ReadOptions{Concurrency: conc})
					assertChunkError(t, err, dm.want, c.Chunks[k])
					if !bytes.Equal(out.Bytes(), data[:c.Chunks[k].Offset]) {
						t.Fatalf("wrote %d bytes, want exactly the %d bytes before the bad chunk", out.Len(), c.Chunks[k].Offset)
					}
				}
				// VisitChunks reports the same chunk error.
				err = VisitChunks(ctx, store, c.Name, c.Chunks, ReadOptions{Concurrency: 4}, func(ch Chunk, b []byte) error {
					if !bytes.Equal(b, data[ch.Offset:ch.Offset+ch.Size]) {
						return fmt.Errorf("chunk at %d: wrong bytes", ch.Offset)
					}
					return nil
				})
				assertChunkError(t, err, dm.want, c.Chunks[k])
				// Through OpenComponent the reader sees the same prefix, then the error.
				rc := OpenComponent(ctx, store, c, ReadOptions{})
				got, err := io.ReadAll(rc)
				_ = rc.Close()
				assertChunkError(t, err, dm.want, c.Chunks[k])
				if int64(len(got)) != c.Chunks[k].Offset {
					t.Fatalf("OpenComponent gave %d bytes, want %d", len(got), c.Chunks[k].Offset)
				}
				// A range that avoids the bad chunk still reads.
				if k > 0 {
					var part bytes.Buffer
					if err := ReadRange(ctx, store, c, 1, c.Chunks[k].Offset-1, &part, ReadOptions{}); err != nil {
						t.Fatalf("ReadRange before the bad chunk: %v", err)
					}
				}
			})
		}
	}
}

func assertChunkError(t *testing.T, err, want error, ch Chunk) {
	t.Helper()
	var ce *ChunkError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ChunkError", err, err)
	}
	if !errors.Is(err, want) || ce.Component != testSpec.Name || ce.Chunk != ch.Digest || ce.Offset != ch.Offset {
		t.Fatalf("error %+v, want %v for component %q chunk %s", ce, want, testSpec.Name, ch.Digest)
	}
	if !strings.Contains(err.Error(), ch.Digest) || !strings.Contains(err.Error(), `"db"`) {
		t.Fatalf("message %q does not name component and chunk", err)
	}
}

func TestReadComponent_ManifestNamingMissingChunk(t *testing.T) {
	ctx := t.Context()
	store := NewMemoryStore()
	data := seededBytes(t, 9, 1<<20)
	c, _, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest names a chunk the store never had.
	ghost := DigestBytes([]byte("never stored"))
	c.Chunks[1].Digest = ghost
	m := &Manifest{SchemaVersion: SchemaVersion, Components: []Component{c}}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeManifest(enc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = ReadComponent(ctx, store, dec.Components[0], &out, ReadOptions{})
	assertChunkError(t, err, ErrMissingChunk, c.Chunks[1])
	if !bytes.Equal(out.Bytes(), data[:c.Chunks[1].Offset]) {
		t.Fatalf("wrote %d bytes, want %d", out.Len(), c.Chunks[1].Offset)
	}
}

func TestReadComponent_UnknownSchemaWritesNothing(t *testing.T) {
	m := testManifest()
	m.SchemaVersion = 2
	raw := mustMarshal(t, m)
	if _, err := DecodeManifest(raw); !errors.Is(err, ErrUnsupportedSchema) || !strings.Contains(err.Error(), "schemaVersion 2") {
		t.Fatalf("DecodeManifest error = %v, want ErrUnsupportedSchema naming version 2", err)
	}
}

func TestReadComponent_RejectsInconsistentStreamDigest(t *testing.T) {
	ctx := t.Context()
	store := NewMemoryStore()
	c, _, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(seededBytes(t, 3, 300<<10)), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Digest = DigestBytes([]byte("something else"))
	if err := ReadComponent(ctx, store, c, io.Discard, ReadOptions{}); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("error = %v, want ErrInvalidManifest", err)
	}
}

func TestReadRange_FetchesOnlyCoveringChunks(t *testing.T) {
	ctx := t.Context()
	mem := NewMemoryStore()
	data := seededBytes(t, 11, 2<<20)
	c, _, err := WriteComponent(ctx, mem, testSpec, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{ChunkStore: mem}
	size := int64(len(data))
	for _, r := range [][2]int64{{0, 0}, {0, 1}, {0, size}, {size - 1, 1}, {size, 0}, {c.Chunks[1].Offset, c.Chunks[1].Size}, {c.Chunks[1].Offset - 1, 2}, {12345, 300000}} {
		cs.reset()
		var out bytes.Buffer
		if err := ReadRange(ctx, cs, c, r[0], r[1], &out, ReadOptions{}); err != nil {
			t.Fatalf("ReadRange(%d, %d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(out.Bytes(), data[r[0]:r[0]+r[1]]) {
			t.Fatalf("ReadRange(%d, %d): wrong bytes", r[0], r[1])
		}
		want := 0
		for _, ch := range c.Chunks {
			if r[1] > 0 && ch.Offset < r[0]+r[1] && ch.Offset+ch.Size > r[0] {
				want++
			}
		}
		if cs.gets() != want {
			t.Fatalf("ReadRange(%d, %d) fetched %d chunks, want %d", r[0], r[1], cs.gets(), want)
		}
	}
	for _, r := range [][2]int64{{-1, 1}, {0, size + 1}, {size, 1}, {1, -1}} {
		if err := ReadRange(ctx, cs, c, r[0], r[1], io.Discard, ReadOptions{}); err == nil {
			t.Fatalf("ReadRange(%d, %d) accepted an out-of-range request", r[0], r[1])
		}
	}
}

// countingStore counts Gets; it wraps a real store rather than faking one.
type countingStore struct {
	ChunkStore
	mu sync.Mutex
	n  int
}

func (s *countingStore) Get(ctx context.Context, d string) ([]byte, error) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.ChunkStore.Get(ctx, d)
}
func (s *countingStore) reset()    { s.mu.Lock(); s.n = 0; s.mu.Unlock() }
func (s *countingStore) gets() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

func TestWriteComponent_HonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := WriteComponent(ctx, NewMemoryStore(), testSpec, seededReader(1, 10<<20), WriteOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	store := NewMemoryStore()
	c, _, err := WriteComponent(t.Context(), store, testSpec, seededReader(1, 1<<20), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ReadComponent(ctx, store, c, io.Discard, ReadOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("read error = %v, want context.Canceled", err)
	}
}

func TestWriteComponent_RejectsBadInput(t *testing.T) {
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		spec Component
		opts WriteOptions
	}{
		{"bad name", Component{Name: "Bad", Kind: KindRedis}, WriteOptions{}},
		{"bad kind", Component{Name: "x", Kind: "oracle"}, WriteOptions{}},
		{"avg not power of two", testSpec, WriteOptions{MinSize: 1000, AvgSize: 3000, MaxSize: 9000}},
		{"max too big", testSpec, WriteOptions{MaxSize: MaxChunkSize + 1}},
	} {
		if _, _, err := WriteComponent(ctx, NewMemoryStore(), tt.spec, strings.NewReader("x"), tt.opts); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	_, _, err := WriteComponent(ctx, NewMemoryStore(), testSpec, io.MultiReader(seededReader(1, 1<<20), errReader{}), WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("read error not reported: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestWriteComponent_DedupsRepeatsWithinStream(t *testing.T) {
	block := seededBytes(t, 5, 1<<20)
	data := bytes.Repeat(block, 4)
	store := NewMemoryStore()
	c, stats, err := WriteComponent(t.Context(), store, testSpec, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.NewChunks >= stats.Chunks/2 || store.Len() != stats.NewChunks {
		t.Fatalf("repeated blocks not deduped: %+v, store has %d", stats, store.Len())
	}
	var out bytes.Buffer
	if err := ReadComponent(t.Context(), store, c, &out, ReadOptions{}); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestWriteComponent_ChunkSizesFollowOptions(t *testing.T) {
	data := seededBytes(t, 13, 8<<20)
	for _, opts := range []WriteOptions{{}, {AvgSize: 128 << 10}, {MinSize: 4096, AvgSize: 16 << 10, MaxSize: 32 << 10, Concurrency: 3}} {
		o, err := opts.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := WriteComponent(t.Context(), NewMemoryStore(), testSpec, bytes.NewReader(data), opts)
		if err != nil {
			t.Fatal(err)
		}
		for i, ch := range c.Chunks {
			last := i == len(c.Chunks)-1
			if ch.Size > int64(o.MaxSize) || (!last && ch.Size < int64(o.MinSize)) {
				t.Fatalf("opts %+v: chunk %d is %d bytes, outside [%d, %d]", o, i, ch.Size, o.MinSize, o.MaxSize)
			}
		}
		if mean := int(c.Size) / len(c.Chunks); mean < o.AvgSize/2 || mean > 2*o.AvgSize {
			t.Fatalf("opts %+v: mean chunk %d bytes, far from the average %d", o, mean, o.AvgSize)
		}
	}
}

func TestVisitChunks_HandsOutEverySelectedChunkOnceVerified(t *testing.T) {
	ctx := t.Context()
	data := seededBytes(t, 11, 2<<20)
	store := NewMemoryStore()
	c, _, err := WriteComponent(ctx, store, testSpec, bytes.NewReader(data), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every other chunk: any subset can be visited.
	var want []Chunk
	for i := 0; i < len(c.Chunks); i += 2 {
		want = append(want, c.Chunks[i])
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	err = VisitChunks(ctx, store, c.Name, want, ReadOptions{Concurrency: 3}, func(ch Chunk, b []byte) error {
		if !bytes.Equal(b, data[ch.Offset:ch.Offset+ch.Size]) {
			return fmt.Errorf("chunk at %d: wrong bytes", ch.Offset)
		}
		mu.Lock()
		seen[ch.Offset]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range want {
		if seen[ch.Offset] != 1 {
			t.Errorf("chunk at %d visited %d times, want once", ch.Offset, seen[ch.Offset])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("visited %d chunks, want %d", len(seen), len(want))
	}
	// An error of the visitor stops the visit and comes back as it is.
	boom := errors.New("boom")
	if err := VisitChunks(ctx, store, c.Name, c.Chunks, ReadOptions{}, func(Chunk, []byte) error { return boom }); err != boom {
		t.Errorf("visitor error came back as %v", err)
	}
}
