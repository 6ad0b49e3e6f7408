package statepkg

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
)

func libraryCuts(t *testing.T, data []byte, o WriteOptions) []int {
	t.Helper()
	ch, err := chunkers.NewChunker("fastcdc-v1.0.0", bytes.NewReader(data), &chunkers.ChunkerOpts{MinSize: o.MinSize, NormalSize: o.AvgSize, MaxSize: o.MaxSize})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		b, err := ch.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if len(b) > 0 {
			sizes = append(sizes, len(b))
		}
		if err != nil {
			return sizes
		}
	}
}

func ourCuts(t *testing.T, r io.Reader, o WriteOptions) []int {
	t.Helper()
	ch := newCDCChunker(r, o)
	var sizes []int
	for {
		b, err := ch.next()
		if errors.Is(err, io.EOF) {
			return sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
	}
}

// Streams without boundaries must be cut exactly where go-cdc-chunkers cut
// them, or new versions would stop deduplicating against old ones.
func TestChunker_WithoutBoundariesCutsLikeTheLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := make([]byte, 3<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	streams := map[string][]byte{
		"empty":   {},
		"tiny":    random[:100],
		"min":     random[:16<<10],
		"min+1":   random[:16<<10+1],
		"random":  random,
		"tarlike": tarLikeStream(t, 3, 4<<20),
		"zeros":   make([]byte, 1<<20+17),
	}
	for _, sizes := range [][3]int{{0, 0, 0}, {2 << 10, 8 << 10, 64 << 10}, {1 << 10, 4 << 10, 16 << 10}, {256 << 10, 1 << 20, 4 << 20}} {
		o, err := (&WriteOptions{MinSize: sizes[0], AvgSize: sizes[1], MaxSize: sizes[2]}).withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range streams {
			want := libraryCuts(t, data, o)
			for rname, r := range map[string]io.Reader{"whole": bytes.NewReader(data), "onebyte": iotest.OneByteReader(bytes.NewReader(data)), "half": iotest.HalfReader(bytes.NewReader(data))} {
				if rname == "onebyte" && len(data) > 1<<20 {
					continue
				}
				got := ourCuts(t, r, o)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, sizes %v, %s reads: cuts %v, library %v", name, sizes, rname, got, want)
				}
			}
		}
	}
}

// smallFileTar is a tar stream of n files of size bytes, marking each
// entry's start in cuts when cuts is not nil. Files listed in changed get
// other content.
func smallFileTar(t testing.TB, n, size int, changed map[int]bool, cuts *Cuts) ([]byte, []int64) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, size)
	var offs []int64
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		if changed[i] {
			rng = rand.New(rand.NewPCG(uint64(i), 2))
		}
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("d%03d/f%05d.bin", i/500, i)
		if cuts != nil {
			cuts.MarkCut(int64(buf.Len()), name)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), ModTime: time.Unix(1_700_000_000, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, int64(buf.Len()))
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), offs
}

// chunksCovering counts the chunks holding bytes [off, off+n).
func chunksCovering(c Component, off, n int64) int {
	k := 0
	for _, ch := range c.Chunks {
		if ch.Offset < off+n && ch.Offset+ch.Size > off {
			k++
		}
	}
	return k
}

// With the tar entries' starts marked, a changed small file is re-fetched
// as one or two small chunks, not its whole content-defined neighbourhood,
// and a new version shares every other chunk with the old one.
func TestWriteComponent_CutsAtMarkedFileBoundaries(t *testing.T) {
	ctx := context.Background()
	const n, size = 2000, 4 << 10
	changed := map[int]bool{}
	for i := 0; i < n; i += 100 {
		changed[i] = true
	}
	write := func(store ChunkStore, changed map[int]bool, marked bool) (Component, WriteStats, []int64) {
		var cuts *Cuts
		if marked {
			cuts = NewCuts()
		}
		stream, offs := smallFileTar(t, n, size, changed, cuts)
		c, st, err := WriteComponent(ctx, store, Component{Name: "files", Kind: KindVolume}, bytes.NewReader(stream), WriteOptions{Cuts: cuts})
		if err != nil {
			t.Fatal(err)
		}
		return c, st, offs
	}
	for _, marked := range []bool{false, true} {
		store := NewMemoryStore()
		v1, _, _ := write(store, nil, marked)
		v2, st, offs := write(store, changed, marked)
		worst, total := 0, 0
		var fetched int64
		for i := range changed {
			k := chunksCovering(v2, offs[i], size)
			worst = max(worst, k)
			total += k
		}
		for _, ch := range v2.Chunks {
			for i := range changed {
				if ch.Offset < offs[i]+size && ch.Offset+ch.Size > offs[i] {
					fetched += ch.Size
					break
				}
			}
		}
		t.Logf("marked=%v: %d chunks (mean %d KiB); changing %d files of %d: %d new chunks, %d KiB new of %d KiB; a changed file lies in at most %d chunks, %d KiB fetched for them",
			marked, len(v2.Chunks), v2.Size/int64(len(v2.Chunks))>>10, len(changed), n, st.NewChunks, st.NewBytes>>10, st.Bytes>>10, worst, fetched>>10)
		if !marked {
			continue
		}
		if worst > 2 {
			t.Errorf("a changed 4 KiB file lies in %d chunks, want at most 2", worst)
		}
		if total > 2*len(changed) || fetched > int64(len(changed))*56<<10 {
			t.Errorf("fetching %d changed files takes %d chunks, %d KiB; want about one small chunk each", len(changed), total, fetched>>10)
		}
		if st.NewBytes > int64(len(changed))*56<<10 {
			t.Errorf("changing %d files added %d KiB of new chunks, want about one small chunk per file", len(changed), st.NewBytes>>10)
		}
		if len(v1.Chunks) > 0 && v1.Chunks[len(v1.Chunks)-1].Size > DefaultMaxSize {
			t.Error("a chunk exceeds MaxSize")
		}
	}
}

// Inserting a file shifts every later offset; cuts chosen by the files'
// paths resynchronise right after it, so the versions share all but a few
// chunks.
func TestWriteComponent_BoundaryCutsResyncAfterAnInsertedFile(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	build := func(insert bool) ([]byte, *Cuts) {
		cuts := NewCuts()
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := make([]byte, 3000)
		for i := range 3000 {
			if insert && i == 1000 {
				_ = tw.Flush()
				cuts.MarkCut(int64(buf.Len()), "inserted")
				_ = tw.WriteHeader(&tar.Header{Name: "inserted", Mode: 0o644, Size: 777, Typeflag: tar.TypeReg})
				_, _ = tw.Write(make([]byte, 777))
			}
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			_ = tw.Flush()
			name := fmt.Sprintf("f%05d", i)
			cuts.MarkCut(int64(buf.Len()), name)
			_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			_, _ = tw.Write(body)
		}
		_ = tw.Close()
		return buf.Bytes(), cuts
	}
	s1, c1 := build(false)
	if _, _, err := WriteComponent(ctx, store, Component{Name: "v", Kind: KindVolume}, bytes.NewReader(s1), WriteOptions{Cuts: c1}); err != nil {
		t.Fatal(err)
	}
	s2, c2 := build(true)
	_, st, err := WriteComponent(ctx, store, Component{Name: "v", Kind: KindVolume}, bytes.NewReader(s2), WriteOptions{Cuts: c2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("insert into %d KiB: %d of %d chunks new, %d KiB", st.Bytes>>10, st.NewChunks, st.Chunks, st.NewBytes>>10)
	if st.NewChunks > 4 {
		t.Errorf("inserting one file made %d new chunks, want at most 4", st.NewChunks)
	}
}

// Marks that make no sense (out of order, beyond the stream) change nothing
// but where chunks are cut.
func TestWriteComponent_IgnoresNonsenseMarks(t *testing.T) {
	ctx := context.Background()
	data := tarLikeStream(t, 5, 2<<20)
	cuts := NewCuts()
	for _, off := range []int64{100, 50, 20000, 20000, 1 << 40} {
		cuts.MarkCut(off, fmt.Sprint(off))
	}
	store := NewMemoryStore()
	c, _, err := WriteComponent(ctx, store, Component{Name: "x", Kind: KindVolume}, bytes.NewReader(data), WriteOptions{Cuts: cuts})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ReadComponent(ctx, store, c, &out, ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("stream did not round-trip")
	}
}
