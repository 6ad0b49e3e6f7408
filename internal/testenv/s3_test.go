package testenv_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartS3_ServesReadsAndWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := testenv.StartS3(t)
	t.Logf("versitygw ready at %s in %s", s.Endpoint, time.Since(start).Round(time.Millisecond))

	s.CreateBucket(t, "blobs")
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	payload := bytes.Repeat([]byte("chunk"), 1000)
	if _, err := c.PutObject(ctx, "blobs", "sha256/ab/cd", bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	obj, err := c.GetObject(ctx, "blobs", "sha256/ab/cd", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes back, want the %d written", len(got), len(payload))
	}
	// The posix backend keeps the object as a plain file under Dir.
	if _, err := os.Stat(filepath.Join(s.Dir, "blobs", "sha256", "ab", "cd")); err != nil {
		t.Fatalf("object not stored under Dir: %v", err)
	}
}

func TestS3_RejectsWrongSecret(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	bad := *s
	bad.SecretKey = "wrong-secret"
	c, err := bad.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListBuckets(t.Context()); err == nil {
		t.Fatalf("ListBuckets with a wrong secret succeeded: auth is not enforced")
	}
}
