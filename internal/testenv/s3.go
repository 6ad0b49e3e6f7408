package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a running S3-compatible server (versitygw, posix backend) on
// 127.0.0.1 (or S3Options.Host). Buckets are directories under Dir.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Dir       string
}

// S3Options tunes the server. The zero value listens on loopback only.
type S3Options struct {
	// Host is the address to listen on instead of 127.0.0.1, e.g. the
	// local cluster node's address so that pods reach the server.
	Host string
}

// StartS3 starts an S3-compatible server for the test and stops it at cleanup.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	return StartS3With(t, S3Options{})
}

// StartS3With is StartS3 with options.
func StartS3With(t testing.TB, opts S3Options) *S3 {
	t.Helper()
	s, stop, err := RunS3With(t.Context(), "", opts)
	handle(t, "s3 (versitygw)", stop, err)
	return s
}

// RunS3 starts versitygw in a new directory under dir (os.TempDir() when
// empty). The returned stop function shuts it down and removes the directory.
func RunS3(ctx context.Context, dir string) (*S3, func() error, error) {
	return RunS3With(ctx, dir, S3Options{})
}

// RunS3With is RunS3 with options.
func RunS3With(ctx context.Context, dir string, opts S3Options) (*S3, func() error, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return nil, nil, fmt.Errorf("s3 listen host %q: want an IP address", host)
	}
	// The pinned build from `make tools` wins over whatever PATH has.
	server, err := findBinary("versitygw", filepath.Join(ToolsDir(), "bin"))
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "s3")
	if err != nil {
		return nil, nil, err
	}
	s := &S3{
		AccessKey: "testenv" + randomSecret(6),
		SecretKey: randomSecret(20),
		Region:    "us-east-1",
		Dir:       filepath.Join(root, "data"), // kept apart from the log
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		_ = stopper(nil, root)()
		return nil, nil, fmt.Errorf("create s3 data dir: %w", err)
	}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		p, err := startProcess(procSpec{
			name: "versitygw",
			path: server,
			args: []string{"--port", net.JoinHostPort(host, strconv.Itoa(port)), "--quiet", "posix", s.Dir},
			// Credentials go through the environment, not the command line.
			env: []string{
				"ROOT_ACCESS_KEY=" + s.AccessKey,
				"ROOT_SECRET_KEY=" + s.SecretKey,
				"VGW_REGION=" + s.Region,
			},
			dir:     root,
			logPath: filepath.Join(root, "versitygw.log"),
		})
		if err != nil {
			return nil, err
		}
		s.Endpoint = "http://" + net.JoinHostPort(host, strconv.Itoa(port))
		if err := p.waitReady(ctx, s.ping); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		_ = stopper(nil, root)()
		return nil, nil, fmt.Errorf("start versitygw in %s: %w", root, err)
	}
	return s, stopper(proc, root), nil
}

// Addr is host:port, the endpoint form minio-go and many SDKs take.
func (s *S3) Addr() string {
	return strings.TrimPrefix(s.Endpoint, "http://")
}

// Client returns a minio-go client for this server.
func (s *S3) Client() (*minio.Client, error) {
	c, err := minio.New(s.Addr(), &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
		Region: s.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// CreateBucket creates bucket name or fails the test.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.CreateBucketCtx(t.Context(), name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// CreateBucketCtx creates bucket name.
func (s *S3) CreateBucketCtx(ctx context.Context, name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return fmt.Errorf("create s3 bucket %q: %w", name, err)
	}
	return nil
}

func (s *S3) ping(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	_, err = c.ListBuckets(ctx)
	return err
}
