package statepkg

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestDigestBytes_MatchesKnownSHA256(t *testing.T) {
	got := DigestBytes([]byte("abc"))
	want := "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got != want {
		t.Fatalf("DigestBytes(abc) = %s, want %s", got, want)
	}
	h, err := ParseDigest(got)
	if err != nil || "sha256:"+h != got {
		t.Fatalf("ParseDigest(%s) = %q, %v", got, h, err)
	}
}

func TestParseDigest_RejectsMalformed(t *testing.T) {
	good := DigestBytes(nil)
	for _, s := range []string{
		"", "sha256:", good[7:], "sha512:" + good[7:], good + "0", good[:len(good)-1],
		"sha256:" + string(bytes.ToUpper([]byte(good[7:]))), "SHA256:" + good[7:], good[:70] + "g" + good[71:],
	} {
		if _, err := ParseDigest(s); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseDigest(%q) error = %v, want ErrInvalidRef", s, err)
		}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeChunk_RoundTrips(t *testing.T) {
	codec, err := NewCodec(0)
	if err != nil {
		t.Fatal(err)
	}
	defer codec.Close()
	for _, raw := range [][]byte{{}, {0}, []byte("hello hello hello hello"), randomBytes(t, 1<<20), make([]byte, 1<<20)} {
		d1, c1 := EncodeChunk(raw)
		d2, c2 := codec.EncodeChunk(raw)
		if d1 != DigestBytes(raw) || d2 != d1 {
			t.Fatalf("digests differ: %s %s", d1, d2)
		}
		for _, c := range [][]byte{c1, c2} {
			got, err := DecodeChunk(d1, c)
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("DecodeChunk: %v (len %d, want %d)", err, len(got), len(raw))
			}
			got, err = codec.DecodeChunk(d1, c)
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("Codec.DecodeChunk: %v", err)
			}
		}
	}
}

func TestDecodeChunk_DetectsDamage(t *testing.T) {
	raw := randomBytes(t, 256<<10)
	digest, comp := EncodeChunk(raw)
	flipped := bytes.Clone(comp)
	flipped[len(flipped)/2] ^= 0xff
	_, otherComp := EncodeChunk([]byte("other"))
	tests := []struct {
		name       string
		digest     string
		compressed []byte
		want       error
	}{
		{"truncated to half", digest, comp[:len(comp)/2], ErrTruncatedChunk},
		{"truncated by one byte", digest, comp[:len(comp)-1], ErrTruncatedChunk},
		{"empty", digest, nil, ErrTruncatedChunk},
		{"bit flip", digest, flipped, ErrCorruptChunk},
		{"wrong content", digest, otherComp, ErrCorruptChunk},
		{"not zstd", digest, []byte("definitely not zstd data"), ErrCorruptChunk},
		{"bad digest", "sha256:xyz", comp, ErrInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeChunk(tt.digest, tt.compressed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Fatalf("returned %d bytes with an error", len(got))
			}
		})
	}
}

func TestDecodeChunk_RefusesZipBomb(t *testing.T) {
	raw := make([]byte, MaxChunkSize+1)
	digest, comp := EncodeChunk(raw)
	if len(comp) > 1<<20 {
		t.Fatalf("zeros compressed to %d bytes", len(comp))
	}
	if _, err := DecodeChunk(digest, comp); !errors.Is(err, ErrCorruptChunk) {
		t.Fatalf("error = %v, want ErrCorruptChunk", err)
	}
}

func TestChunkError_NamesComponentAndChunk(t *testing.T) {
	d := DigestBytes([]byte("x"))
	err := error(&ChunkError{Component: "db", Chunk: d, Offset: 42, Err: ErrMissingChunk})
	msg := err.Error()
	if !bytes.Contains([]byte(msg), []byte(`"db"`)) || !bytes.Contains([]byte(msg), []byte(d)) {
		t.Fatalf("message %q does not name component and chunk", msg)
	}
	var ce *ChunkError
	if !errors.As(err, &ce) || !errors.Is(err, ErrMissingChunk) {
		t.Fatalf("errors.As/Is failed on %v", err)
	}
}
