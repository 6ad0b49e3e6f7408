package contenthash_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/provider/internal/contenthash"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func digest(t *testing.T, sources ...contenthash.Source) string {
	t.Helper()
	d, err := contenthash.Digest(context.Background(), sources, "")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDigest_SameContentSameDigestRegardlessOfMtime(t *testing.T) {
	files := map[string]string{"a.txt": "alpha", "sub/b.txt": "beta"}
	one, two := writeTree(t, files), writeTree(t, files)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(two, "a.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	d1 := digest(t, contenthash.Source{Name: "files", Kind: "volume", Path: one})
	d2 := digest(t, contenthash.Source{Name: "files", Kind: "volume", Path: two})
	if d1 != d2 {
		t.Fatalf("identical trees hash differently: %s vs %s", d1, d2)
	}
}

func TestDigest_ChangesWithContentNamesModesAndComponents(t *testing.T) {
	base := map[string]string{"a.txt": "alpha", "sub/b.txt": "beta"}
	ref := digest(t, contenthash.Source{Name: "files", Kind: "volume", Path: writeTree(t, base)})

	changedContent := writeTree(t, map[string]string{"a.txt": "alpha!", "sub/b.txt": "beta"})
	renamed := writeTree(t, map[string]string{"a2.txt": "alpha", "sub/b.txt": "beta"})
	added := writeTree(t, map[string]string{"a.txt": "alpha", "sub/b.txt": "beta", "c": ""})
	chmod := writeTree(t, base)
	if err := os.Chmod(filepath.Join(chmod, "a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	same := writeTree(t, base)

	for name, src := range map[string]contenthash.Source{
		"content changed":  {Name: "files", Kind: "volume", Path: changedContent},
		"file renamed":     {Name: "files", Kind: "volume", Path: renamed},
		"file added":       {Name: "files", Kind: "volume", Path: added},
		"mode changed":     {Name: "files", Kind: "volume", Path: chmod},
		"component rename": {Name: "uploads", Kind: "volume", Path: same},
	} {
		t.Run(name, func(t *testing.T) {
			if got := digest(t, src); got == ref {
				t.Fatalf("digest did not change")
			}
		})
	}
}

func TestDigest_SingleFileDiffersFromDirectoryHoldingIt(t *testing.T) {
	dir := writeTree(t, map[string]string{"dump": "PGDMP"})
	file := digest(t, contenthash.Source{Name: "db", Kind: "postgres", Path: filepath.Join(dir, "dump")})
	tree := digest(t, contenthash.Source{Name: "db", Kind: "postgres", Path: dir})
	if file == tree {
		t.Fatal("a file and a directory holding it hash the same")
	}
}

func TestDigest_MissingSourceNamesTheComponent(t *testing.T) {
	_, err := contenthash.Digest(context.Background(), []contenthash.Source{{Name: "db", Kind: "postgres", Path: filepath.Join(t.TempDir(), "nope")}}, "")
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
	if want := `component "db"`; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the component", err)
	}
}

func TestDigest_StopsWhenCancelled(t *testing.T) {
	dir := writeTree(t, map[string]string{"a": "x", "b": "y"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := contenthash.Digest(ctx, []contenthash.Source{{Name: "v", Kind: "volume", Path: dir}}, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

// BenchmarkDigest_File measures plan-time hashing throughput on a 64 MiB
// dump (reported as MB/s).
func BenchmarkDigest_File(b *testing.B) {
	p := filepath.Join(b.TempDir(), "dump")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := contenthash.Digest(context.Background(), []contenthash.Source{{Name: "db", Kind: "postgres", Path: p}}, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigest_Tree measures hashing a directory of 2000 small files.
func BenchmarkDigest_Tree(b *testing.B) {
	dir := b.TempDir()
	for i := range 2000 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.txt", i)), []byte(strings.Repeat("x", 4096)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := contenthash.Digest(context.Background(), []contenthash.Source{{Name: "files", Kind: "volume", Path: dir}}, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDigest_LiveSourcesChangeOnlyWithTheTrigger(t *testing.T) {
	live := contenthash.Source{Name: "db", Kind: "postgres", Live: true}
	a, err := contenthash.Digest(context.Background(), []contenthash.Source{live}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := contenthash.Digest(context.Background(), []contenthash.Source{live}, "")
	c, _ := contenthash.Digest(context.Background(), []contenthash.Source{live}, "2026-11-23")
	if a != b {
		t.Fatal("same live source and trigger hash differently")
	}
	if a == c {
		t.Fatal("a new trigger does not change the digest")
	}
}
