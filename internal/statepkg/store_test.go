package statepkg

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestStores_ImplementContract(t *testing.T) {
	dir := t.TempDir()
	ds, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]interface {
		ChunkStore
		ChunkStatter
		Delete(ctx context.Context, digest string) error
	}{"memory": NewMemoryStore(), "dir": ds}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			digest, comp := EncodeChunk([]byte("chunk contents"))
			if has, err := s.Has(ctx, digest); err != nil || has {
				t.Fatalf("Has before Put = %v, %v", has, err)
			}
			if _, err := s.Get(ctx, digest); !errors.Is(err, ErrMissingChunk) {
				t.Fatalf("Get before Put error = %v, want ErrMissingChunk", err)
			}
			if _, err := s.StoredSize(ctx, digest); !errors.Is(err, ErrMissingChunk) {
				t.Fatalf("StoredSize before Put error = %v, want ErrMissingChunk", err)
			}
			// Concurrent Puts of the same chunk are safe and idempotent.
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if err := s.Put(ctx, digest, comp); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// Put does not keep the caller's buffer.
			buf := append([]byte(nil), comp...)
			other, ocomp := EncodeChunk([]byte("other"))
			copy(buf, ocomp)
			if err := s.Put(ctx, other, ocomp); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, digest)
			if err != nil || string(got) != string(comp) {
				t.Fatalf("Get = %d bytes, %v", len(got), err)
			}
			if n, err := s.StoredSize(ctx, digest); err != nil || n != int64(len(comp)) {
				t.Fatalf("StoredSize = %d, %v", n, err)
			}
			if raw, err := DecodeChunk(digest, got); err != nil || string(raw) != "chunk contents" {
				t.Fatalf("DecodeChunk = %q, %v", raw, err)
			}
			if err := s.Delete(ctx, digest); err != nil {
				t.Fatal(err)
			}
			if has, _ := s.Has(ctx, digest); has {
				t.Fatal("Has after Delete")
			}
			if err := s.Delete(ctx, digest); err != nil {
				t.Fatalf("second Delete: %v", err)
			}
			for _, bad := range []string{"", "sha256:zz", "../../etc/passwd", "sha256:" + testHex + "/.."} {
				if err := s.Put(ctx, bad, comp); !errors.Is(err, ErrInvalidRef) {
					t.Errorf("Put(%q) error = %v, want ErrInvalidRef", bad, err)
				}
				if _, err := s.Get(ctx, bad); !errors.Is(err, ErrInvalidRef) {
					t.Errorf("Get(%q) error = %v, want ErrInvalidRef", bad, err)
				}
			}
		})
	}
}

func TestDirStore_LayoutAndNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	digest, comp := EncodeChunk([]byte("layout"))
	if err := s.Put(t.Context(), digest, comp); err != nil {
		t.Fatal(err)
	}
	h := digest[len(DigestPrefix):]
	want := filepath.Join(dir, "sha256", h[:2], h)
	if b, err := os.ReadFile(want); err != nil || string(b) != string(comp) {
		t.Fatalf("chunk not at %s: %v", want, err)
	}
	entries, err := os.ReadDir(filepath.Dir(want))
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %d entries (%v), want only the chunk", len(entries), err)
	}
	if _, err := NewDirStore(""); err == nil {
		t.Fatal("NewDirStore accepted an empty path")
	}
}

func TestDirStore_GetIntoReusesTheBufferAndReportsMissingChunks(t *testing.T) {
	ds, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	digest, comp := EncodeChunk([]byte("chunk contents, long enough to matter"))
	if _, err := ds.GetInto(ctx, digest, nil); !errors.Is(err, ErrMissingChunk) {
		t.Fatalf("GetInto before Put error = %v, want ErrMissingChunk", err)
	}
	if err := ds.Put(ctx, digest, comp); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	got, err := ds.GetInto(ctx, digest, buf)
	if err != nil || string(got) != string(comp) {
		t.Fatalf("GetInto = %q, %v; want the stored bytes", got, err)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("GetInto did not read into the buffer it was given")
	}
	if got, err := ds.GetInto(ctx, digest, nil); err != nil || string(got) != string(comp) {
		t.Fatalf("GetInto without a buffer = %q, %v", got, err)
	}
	// A chunk file claiming more than any chunk can be is not read.
	p, _ := ds.Path(digest)
	if err := os.Truncate(p, maxChunkFile+1); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.GetInto(ctx, digest, nil); !errors.Is(err, ErrCorruptChunk) {
		t.Errorf("GetInto of an oversized file error = %v, want ErrCorruptChunk", err)
	}
}

// TestDirStore_ReadsWhatOlderVersionsWrote: a store directory as earlier
// DirStores left it (0755/0644, no tmp/, a crashed write's .tmp-* file
// beside the chunks) is read as it is, walked without the stray file, and
// cleaned of it; new writes go through tmp/ and are private.
func TestDirStore_ReadsWhatOlderVersionsWrote(t *testing.T) {
	dir := t.TempDir()
	digest, comp := EncodeChunk([]byte("written by an older version"))
	h := digest[len(DigestPrefix):]
	shard := filepath.Join(dir, "sha256", h[:2])
	if err := os.MkdirAll(shard, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shard, h), comp, 0o644); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(shard, ".tmp-12345")
	if err := os.WriteFile(stray, []byte("half a chunk"), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(t.Context(), digest); err != nil || !bytes.Equal(got, comp) {
		t.Fatalf("old chunk: %v", err)
	}
	var walked []string
	if err := s.Walk(t.Context(), func(c StoredChunk) error {
		walked = append(walked, c.Digest)
		if c.Size != int64(len(comp)) {
			t.Errorf("walk: %s has size %d, want %d", c.Digest, c.Size, len(comp))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != digest {
		t.Fatalf("walk found %v, want only %s", walked, digest)
	}
	if err := s.CleanTemp(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the older version's temporary file is still there: %v", err)
	}
	if got, err := s.Get(t.Context(), digest); err != nil || !bytes.Equal(got, comp) {
		t.Fatalf("old chunk after CleanTemp: %v", err)
	}

	d2, c2 := EncodeChunk([]byte("written now"))
	if err := s.Put(t.Context(), d2, c2); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d2)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("new chunk %s has mode %v, want 0600 (chunks hold application data)", p, st.Mode().Perm())
	}
	if left, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(left) != 0 {
		t.Fatalf("tmp/ after a write: %d entries, %v", len(left), err)
	}
}
