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
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
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
