package statepkg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// testManifest returns a small valid manifest with one chunked component and
// one volume component with a file index.
func testManifest() *Manifest {
	a, b := []byte("first chunk "), []byte("second chunk")
	stream := append(bytes.Clone(a), b...)
	return &Manifest{
		SchemaVersion: SchemaVersion,
		State:         "shop/seed",
		Revision:      "1.2.3",
		Message:       "nightly <seed> & more",
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
		Components: []Component{
			{
				Name: "db", Kind: KindPostgres, Format: "pg_dump-custom",
				Size: int64(len(stream)), Digest: DigestBytes(stream),
				Chunks: []Chunk{
					{Digest: DigestBytes(a), Offset: 0, Size: int64(len(a))},
					{Digest: DigestBytes(b), Offset: int64(len(a)), Size: int64(len(b))},
				},
				Meta: map[string]string{"serverVersion": "15.4", "a": "b"},
			},
			{
				Name: "uploads", Kind: KindVolume, Format: "tar",
				Size: int64(len(stream)), Digest: DigestBytes(stream),
				Chunks: []Chunk{{Digest: DigestBytes(stream), Size: int64(len(stream))}},
				Files: []FileEntry{
					{Path: "img", Type: FileDir, Mode: 0o755},
					{Path: "img/a.png", Type: FileRegular, Mode: 0o644, UID: 1000, GID: 1000, Size: 5, DataOffset: 3, SHA256: DigestBytes(nil)[7:], MTime: time.Unix(1, 0)},
					{Path: "img/b.png", Type: FileSymlink, Linkname: "a.png"},
					{Path: "img/c.png", Type: FileHardlink, Linkname: "img/a.png"},
				},
			},
			{Name: "empty", Kind: KindRedis, Format: "rdb", Digest: DigestBytes(nil)},
		},
	}
}

func TestManifest_EncodeIsCanonical(t *testing.T) {
	m := testManifest()
	enc1, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	enc2, _ := testManifest().Encode()
	if !bytes.Equal(enc1, enc2) {
		t.Fatal("two encodings of the same manifest differ")
	}
	dec, err := DecodeManifest(enc1)
	if err != nil {
		t.Fatalf("DecodeManifest: %v", err)
	}
	enc3, err := dec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc1, enc3) {
		t.Fatalf("decode+encode changed the bytes:\n%s\n%s", enc1, enc3)
	}
	if !strings.Contains(string(enc1), `"chunks":[]`) || !strings.Contains(string(enc1), `"createdAt":"2026-01-02T02:04:05.000000006Z"`) {
		t.Fatalf("not canonical: %s", enc1)
	}
	if ManifestDigest(enc1) != DigestBytes(enc1) {
		t.Fatal("ManifestDigest")
	}
}

func TestDecodeManifest_RejectsUnknownSchema(t *testing.T) {
	for _, doc := range []string{
		`{"schemaVersion":2,"components":[]}`,
		`{"schemaVersion":0,"components":[]}`,
		`{"components":[]}`,
		`{"schemaVersion":"1"}`,
		`{"schemaVersion":1.5}`,
	} {
		if _, err := DecodeManifest([]byte(doc)); !errors.Is(err, ErrUnsupportedSchema) {
			t.Errorf("DecodeManifest(%s) error = %v, want ErrUnsupportedSchema", doc, err)
		}
	}
}

func TestDecodeManifest_RejectsInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *Manifest)
		want   string // substring of the error
	}{
		{"bad component name", func(m *Manifest) { m.Components[0].Name = "DB" }, "component 0: name"},
		{"duplicate component", func(m *Manifest) { m.Components[1].Name = "db" }, `both named "db"`},
		{"unknown kind", func(m *Manifest) { m.Components[0].Kind = "oracle" }, "unknown kind"},
		{"gap between chunks", func(m *Manifest) { m.Components[0].Chunks[1].Offset++ }, "chunk 1"},
		{"first chunk not at 0", func(m *Manifest) { m.Components[0].Chunks[0].Offset = 1 }, "chunk 0"},
		{"sizes do not add up", func(m *Manifest) { m.Components[0].Size++ }, "add up"},
		{"empty chunk", func(m *Manifest) { m.Components[1].Chunks[0].Size = 0; m.Components[1].Size = 0 }, "size 0"},
		{"bad chunk digest", func(m *Manifest) { m.Components[0].Chunks[1].Digest = "sha256:00" }, "chunk 1: digest"},
		{"bad stream digest", func(m *Manifest) { m.Components[0].Digest = "" }, `"db": digest`},
		{"absolute path", func(m *Manifest) { m.Components[1].Files[1].Path = "/etc/passwd" }, "relative"},
		{"dotdot path", func(m *Manifest) { m.Components[1].Files[1].Path = "../x" }, "leave"},
		{"unclean path", func(m *Manifest) { m.Components[1].Files[1].Path = "img/../../x" }, "clean"},
		{"dot path", func(m *Manifest) { m.Components[1].Files[1].Path = "." }, "empty"},
		{"duplicate path", func(m *Manifest) { m.Components[1].Files[2].Path = "img/a.png" }, "twice"},
		{"file outside stream", func(m *Manifest) { m.Components[1].Files[1].DataOffset = 100 }, "outside"},
		{"hardlink escapes", func(m *Manifest) { m.Components[1].Files[3].Linkname = "../../etc/shadow" }, "hardlink"},
		{"unknown file type", func(m *Manifest) { m.Components[1].Files[0].Type = "fifo" }, "unknown type"},
		{"file index on db", func(m *Manifest) { m.Components[0].Files = m.Components[1].Files }, "file index"},
		{"bad state", func(m *Manifest) { m.State = "shop" }, "project/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManifest()
			tt.mutate(m)
			if _, err := m.Encode(); !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("Encode error = %v, want ErrInvalidManifest", err)
			}
			// Bypass Encode's validation to feed the decoder the bad document.
			m.SchemaVersion = 1
			raw := mustMarshal(t, m)
			_, err := DecodeManifest(raw)
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeManifest error = %v, want ErrInvalidManifest mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDecodeManifest_RejectsNonJSON(t *testing.T) {
	for _, doc := range []string{"", "null", "[]", `{"schemaVersion":1} x`, `{"schemaVersion":1,"components":{}}`} {
		if _, err := DecodeManifest([]byte(doc)); err == nil {
			t.Errorf("DecodeManifest(%q) succeeded", doc)
		}
	}
}
