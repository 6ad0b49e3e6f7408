package testenv_test

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// The address option binds the server there, and only there: pods reach
// it on the cluster node's address, while loopback stays the default.
func TestStartS3With_ListensOnTheGivenHost(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3With(t, testenv.S3Options{Host: "127.0.0.2"})
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Hostname() != "127.0.0.2" {
		t.Fatalf("endpoint %s (%v), want one on 127.0.0.2", s.Endpoint, err)
	}
	s.CreateBucket(t, "blobs")
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", u.Port()), time.Second); err == nil {
		c.Close()
		t.Errorf("the server also answers on 127.0.0.1:%s", u.Port())
	}
	if _, _, err := testenv.RunS3With(t.Context(), "", testenv.S3Options{Host: "node.local"}); err == nil || !strings.Contains(err.Error(), "want an IP address") {
		t.Errorf("a host name as listen address: %v, want a refusal", err)
	}
}
