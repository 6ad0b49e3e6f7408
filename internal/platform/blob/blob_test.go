package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestStores_Conformance runs the same checks on the filesystem store and
// on a real S3 server (versitygw).
func TestStores_Conformance(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(t *testing.T) blob.Store{
		"fs": func(t *testing.T) blob.Store {
			s, err := blob.Open(ctx, "", t.TempDir(), os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) blob.Store {
			if testing.Short() {
				t.Skip("-short")
			}
			srv := testenv.StartS3(t)
			srv.CreateBucket(t, "chunks")
			env := map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey}
			s, err := blob.Open(ctx, "s3://chunks/prefix?endpoint="+srv.Endpoint+"&region="+srv.Region, "", func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			data := bytes.Repeat([]byte("chunk-bytes "), 1000)
			d := digestOf(data)
			if ok, err := s.Has(ctx, d); err != nil || ok {
				t.Fatalf("has before put: %v %v", ok, err)
			}
			if _, err := s.Open(ctx, d); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("open missing: want ErrNotFound, got %v", err)
			}
			for i := 0; i < 2; i++ { // idempotent
				if err := s.Put(ctx, d, data); err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
			}
			o, err := s.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Seek(100, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(o)
			o.Close()
			if err != nil || !bytes.Equal(rest, data[100:]) || o.Info().Size != int64(len(data)) {
				t.Fatalf("read after seek: %v, %d bytes, size %d", err, len(rest), o.Info().Size)
			}
			var seen []string
			if err := s.Walk(ctx, func(in blob.Info) error { seen = append(seen, in.Digest); return nil }); err != nil || len(seen) != 1 || seen[0] != d {
				t.Fatalf("walk: %v %v", seen, err)
			}
			if err := s.Delete(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, d); err != nil {
				t.Fatalf("delete twice: %v", err)
			}
			if ok, _ := s.Has(ctx, d); ok {
				t.Fatal("has after delete")
			}
			for _, bad := range []string{"sha256:../../etc/passwd", "md5:abc", "sha256:" + string(bytes.Repeat([]byte("A"), 64))} {
				if err := s.Put(ctx, bad, data); err == nil {
					t.Fatalf("put %q accepted", bad)
				}
			}
		})
	}
}

func TestOpen_RefusesCredentialsInSpec(t *testing.T) {
	_, err := blob.Open(context.Background(), "s3://key:secret@bucket?endpoint=http://127.0.0.1:1", "", os.Getenv)
	if err == nil {
		t.Fatal("credentials in --blob-store accepted")
	}
}

func TestFS_CleanTempRemovesInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.CleanTemp(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("%d temp files left", len(left))
	}
}

// TestFS_IsTheDirStoreLayout: the platform's filesystem store and a local
// statepkg.DirStore lay chunks out alike, so each reads what the other
// wrote, and the store's tmp/ and stray files are no chunks.
func TestFS_IsTheDirStoreLayout(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	fs, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := statepkg.NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, c1 := statepkg.EncodeChunk([]byte("put by the platform"))
	if err := fs.Put(ctx, d1, c1); err != nil {
		t.Fatal(err)
	}
	if got, err := ds.Get(ctx, d1); err != nil || !bytes.Equal(got, c1) {
		t.Fatalf("DirStore reading what FS wrote: %v", err)
	}
	d2, c2 := statepkg.EncodeChunk([]byte("put by a DirStore"))
	if err := ds.Put(ctx, d2, c2); err != nil {
		t.Fatal(err)
	}
	o, err := fs.Open(ctx, d2)
	if err != nil {
		t.Fatalf("FS opening what DirStore wrote: %v", err)
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil || !bytes.Equal(got, c2) {
		t.Fatalf("FS reading what DirStore wrote: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-1"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var walked []string
	if err := fs.Walk(ctx, func(i blob.Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(walked)
	want := []string{d1, d2}
	slices.Sort(want)
	if !slices.Equal(walked, want) {
		t.Fatalf("walk: %v, want %v", walked, want)
	}
	if _, err := fs.Size(ctx, digestOf([]byte("never stored"))); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("size of a missing chunk: %v, want ErrNotFound", err)
	}
}
