package statepkg

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// MaxChunkSize bounds the decompressed size of one chunk. Chunkers never cut
// pieces this large; the bound keeps a hostile or damaged chunk (a "zip
// bomb") from exhausting memory.
const MaxChunkSize = 16 << 20

// encoderWindow is the zstd window used for compressing chunks.
const encoderWindow = 1 << 20

// Codec compresses and decompresses chunks. Building one allocates zstd
// state, so long-lived code (writers, readers, servers) should create one
// Codec and share it: its methods are safe for concurrent use.
type Codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// NewCodec returns a Codec whose encoder and decoder are each usable by up
// to concurrency goroutines at once without waiting (0 means GOMAXPROCS).
func NewCodec(concurrency int) (*Codec, error) {
	// A 1 MiB window covers whole chunks of the default sizes and keeps each
	// encoder's state near 3.5 MiB instead of 18 MiB at the default 8 MiB.
	encOpts := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(encoderWindow)}
	decOpts := []zstd.DOption{
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecoderMaxWindow(MaxChunkSize),
		// Every decoded chunk is checked against its sha256; the frame's
		// xxhash would only check the same bytes again, weaker.
		zstd.IgnoreChecksum(true),
	}
	if concurrency > 0 {
		encOpts = append(encOpts, zstd.WithEncoderConcurrency(concurrency))
		decOpts = append(decOpts, zstd.WithDecoderConcurrency(concurrency))
	} else {
		decOpts = append(decOpts, zstd.WithDecoderConcurrency(0))
	}
	enc, err := zstd.NewWriter(nil, encOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, decOpts...)
	if err != nil {
		_ = enc.Close()
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	return &Codec{enc: enc, dec: dec}, nil
}

// Close releases the codec's resources. The codec must not be used after.
func (c *Codec) Close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// EncodeChunk returns the digest of raw (the chunk's identity) and its zstd
// compression.
func (c *Codec) EncodeChunk(raw []byte) (digest string, compressed []byte) {
	return DigestBytes(raw), c.enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
}

// DecodeChunk decompresses a chunk and checks it against digest. Errors wrap
// ErrTruncatedChunk when the compressed data ends early and ErrCorruptChunk
// for anything else wrong with it.
func (c *Codec) DecodeChunk(digest string, compressed []byte) ([]byte, error) {
	return c.decodeChunk(digest, compressed, nil)
}

// decodeChunk is DecodeChunk decompressing into dst's spare capacity.
func (c *Codec) decodeChunk(digest string, compressed, dst []byte) ([]byte, error) {
	if _, err := ParseDigest(digest); err != nil {
		return nil, err
	}
	if len(compressed) == 0 {
		// Even an empty chunk compresses to a frame header; nothing at all
		// means the upload or download was cut short.
		return nil, fmt.Errorf("%w: no compressed bytes", ErrTruncatedChunk)
	}
	raw, err := c.dec.DecodeAll(compressed, dst[:0])
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %v", ErrTruncatedChunk, err)
		}
		return nil, fmt.Errorf("%w: decompressing: %v", ErrCorruptChunk, err)
	}
	if got := DigestBytes(raw); got != digest {
		return nil, fmt.Errorf("%w: content has digest %s", ErrCorruptChunk, got)
	}
	return raw, nil
}

// EncodeChunk is Codec.EncodeChunk with a single-use encoder. It is meant for
// occasional calls (tests, tools, a single upload); code that handles many
// chunks should hold a Codec, which avoids rebuilding the zstd state each
// call. There is deliberately no hidden package-level codec.
func EncodeChunk(raw []byte) (digest string, compressed []byte) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(encoderWindow))
	if err != nil {
		// NewWriter fails only on invalid options, and these are constant.
		panic(fmt.Sprintf("statepkg: creating zstd encoder: %v", err))
	}
	defer func() { _ = enc.Close() }()
	return DigestBytes(raw), enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
}

// DecodeChunk is Codec.DecodeChunk with a single-use decoder; see EncodeChunk
// for when to prefer a Codec.
func DecodeChunk(digest string, compressed []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecoderMaxWindow(MaxChunkSize))
	if err != nil {
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	defer dec.Close()
	c := Codec{dec: dec}
	return c.DecodeChunk(digest, compressed)
}
