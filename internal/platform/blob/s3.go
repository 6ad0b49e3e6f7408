package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates a bucket on an S3-compatible server.
type S3Config struct {
	Bucket       string
	Prefix       string
	Endpoint     string // e.g. http://127.0.0.1:9000; empty = AWS
	Region       string
	AccessKey    string
	SecretKey    string
	SessionToken string
	PathStyle    bool
}

// S3 stores chunks as objects PREFIX/sha256/ab/<hex>. A PUT of an object is
// atomic on S3, so no temp step is needed.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
	desc   string
}

// NewS3 connects to the bucket and checks it exists.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 blob store: no bucket: use s3://BUCKET?endpoint=URL")
	}
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("s3 blob store: endpoint %q: want http(s)://host:port", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme != "http"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewIAM("")
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("s3 blob store: %w", err)
	}
	s := &S3{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix, desc: "s3://" + path.Join(cfg.Bucket, cfg.Prefix) + " at " + host}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 blob store: check bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3 blob store: bucket %s does not exist: create it first", cfg.Bucket)
	}
	return s, nil
}

func (s *S3) String() string { return s.desc }

func (s *S3) key(digest string) (string, error) {
	h, err := hexOf(digest)
	if err != nil {
		return "", err
	}
	return path.Join(s.prefix, "sha256", h[:2], h), nil
}

func isNoSuchKey(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

// Has stats the object.
func (s *S3) Has(ctx context.Context, digest string) (bool, error) {
	k, err := s.key(digest)
	if err != nil {
		return false, err
	}
	_, err = s.c.StatObject(ctx, s.bucket, k, minio.StatObjectOptions{})
	if isNoSuchKey(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat chunk in s3: %w", err)
	}
	return true, nil
}

// Put uploads the object.
func (s *S3) Put(ctx context.Context, digest string, data []byte) error {
	k, err := s.key(digest)
	if err != nil {
		return err
	}
	// No existence check: callers ask Has first, and rewriting identical
	// content-addressed bytes is harmless (S3 PUTs are atomic).
	_, err = s.c.PutObject(ctx, s.bucket, k, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/zstd", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("put chunk in s3: %w", err)
	}
	return nil
}

type s3Object struct {
	*minio.Object
	info Info
}

func (o *s3Object) Info() Info { return o.info }

// Open stats then opens the object (minio.Object seeks with ranged GETs).
func (s *S3) Open(ctx context.Context, digest string) (Object, error) {
	k, err := s.key(digest)
	if err != nil {
		return nil, err
	}
	st, err := s.c.StatObject(ctx, s.bucket, k, minio.StatObjectOptions{})
	if isNoSuchKey(err) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open chunk in s3: %w", err)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open chunk in s3: %w", err)
	}
	return &s3Object{Object: obj, info: Info{Digest: digest, Size: st.Size, ModTime: st.LastModified}}, nil
}

// Delete removes the object.
func (s *S3) Delete(ctx context.Context, digest string) error {
	k, err := s.key(digest)
	if err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, k, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("delete chunk in s3: %w", err)
	}
	return nil
}

// Walk lists the objects under the prefix.
func (s *S3) Walk(ctx context.Context, fn func(Info) error) error {
	pfx := path.Join(s.prefix, "sha256") + "/"
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: pfx, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list chunks in s3: %w", o.Err)
		}
		name := path.Base(o.Key)
		if len(name) != 64 || strings.Contains(name, ".") {
			continue
		}
		if err := fn(Info{Digest: "sha256:" + name, Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Ping checks the bucket is reachable.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.c.BucketExists(ctx, s.bucket); err != nil {
		return fmt.Errorf("s3 not reachable: %w", err)
	}
	return nil
}
