package statepkg

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slowDecode is what fastDecodeManifest must agree with.
func slowDecode(b []byte) (*Manifest, error) {
	var m Manifest
	err := json.Unmarshal(b, &m)
	return &m, err
}

func fastDecodeCases(t testing.TB) [][]byte {
	m := testManifest()
	// Strings encoding/json escapes or that are not ASCII take the
	// per-value slow path inside the fast decoder.
	m.Components[1].Files = append(m.Components[1].Files,
		FileEntry{Path: "img/ä \"q\" \\ <&>\u2028", Type: FileRegular, Mode: 0o4755, Size: 2, DataOffset: 9, SHA256: DigestBytes(nil)[7:], MTime: time.Unix(2, 5).UTC()})
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		enc,
		[]byte(`{"schemaVersion":1,"createdAt":"2026-01-02T03:04:05Z","components":[]}`),
		[]byte(" { \"components\" : [ { \"name\" : \"a\" , \"meta\" : { \"k\" : \"v\" , \"k\" : \"w\" } } ] , \"schemaVersion\" : -0 }\n"),
		[]byte(`{"components":[{"files":[],"chunks":[],"meta":{}}]}`),
	}
}

func TestFastDecodeManifest_AgreesWithEncodingJSON(t *testing.T) {
	for i, b := range fastDecodeCases(t) {
		fast, ok := fastDecodeManifest(b)
		if !ok {
			t.Fatalf("case %d: fast decoder refused %s", i, b)
		}
		slow, err := slowDecode(b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("case %d: fast decoder gives\n%+v\nencoding/json\n%+v", i, fast, slow)
		}
	}
}

func TestFastDecodeManifest_LeavesAnythingUnusualToEncodingJSON(t *testing.T) {
	for _, s := range []string{
		``, `[]`, `null`, `{"schemaVersion":1} x`, `{"schemaVersion":1.0}`, `{"schemaVersion":1e0}`,
		`{"schemaVersion":01}`, `{"schemaVersion":null}`, `{"SchemaVersion":1}`, `{"unknown":1}`,
		`{"state":"a","state":"b"}`, `{"state":"a\u0000b` + "\x01" + `"}`, `{"components":[{"files":[{"size":-}]}]}`,
		`{"components":[{"files":[{"mode":4294967296}]}]}`, `{"components":[{"files":[{"uid":99999999999999999999}]}]}`,
		`{"createdAt":"2026-01-02T03:04:05\u005a"}`, `{"createdAt":"yesterday"}`, `{"components":[,]}`, `{"components":[{},]}`,
		`{"state":"bad \x escape"}`, `{"stat\u0065":"x"}`, `{"state":"x",}`,
	} {
		if m, ok := fastDecodeManifest([]byte(s)); ok {
			t.Errorf("fast decoder accepted %q as %+v", s, m)
		}
	}
}

func TestDecodeManifest_SameResultThroughEitherDecoder(t *testing.T) {
	enc, err := testManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	fast, err := DecodeManifest(enc)
	if err != nil {
		t.Fatal(err)
	}
	// A key in another case is one only encoding/json understands.
	slow, err := DecodeManifest([]byte(strings.Replace(string(enc), `"schemaVersion"`, `"SchemaVersion"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("fast path\n%+v\nfallback\n%+v", fast, slow)
	}
}

// TestFastDecodeManifest_MutatedInputs checks the fuzz property on
// thousands of damaged encodings in every ordinary test run.
func TestFastDecodeManifest_MutatedInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[],:"\ 0123456789-.eE+nulltruefalse/aZ` + "\x80\xff\n\x00")
	for _, base := range fastDecodeCases(t) {
		for range 3000 {
			b := bytes.Clone(base)
			for range 1 + r.IntN(3) {
				k := r.IntN(len(b))
				switch c := alphabet[r.IntN(len(alphabet))]; r.IntN(3) {
				case 0:
					b[k] = c
				case 1:
					b = append(b[:k], b[k+1:]...)
				default:
					b = append(b[:k], append([]byte{c}, b[k:]...)...)
				}
				if len(b) == 0 {
					b = []byte("{")
				}
			}
			fast, ok := fastDecodeManifest(b)
			if !ok {
				continue
			}
			slow, err := slowDecode(b)
			if err != nil {
				t.Fatalf("fast decoder accepted %q, encoding/json says %v", b, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: fast decoder gives\n%+v\nencoding/json\n%+v", b, fast, slow)
			}
		}
	}
}

// FuzzFastDecodeManifest: whatever the fast decoder accepts, encoding/json
// accepts too, with the same result.
func FuzzFastDecodeManifest(f *testing.F) {
	for _, b := range fastDecodeCases(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"components":[{"files":[{"path":"a","mtime":"2026-01-02T03:04:05.5+01:00","mode":420}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastDecodeManifest(b)
		if !ok {
			return
		}
		slow, err := slowDecode(b)
		if err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json says %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast decoder gives\n%+v\nencoding/json\n%+v", b, fast, slow)
		}
	})
}

// BenchmarkDecodeManifest50kFiles decodes a manifest with a volume index of
// 50,000 files (the restore bench's small-files case).
func BenchmarkDecodeManifest50kFiles(b *testing.B) {
	m := &Manifest{SchemaVersion: SchemaVersion, State: "bench/state", CreatedAt: time.Unix(1, 0).UTC()}
	c := Component{Name: "files", Kind: KindVolume, Format: "tar"}
	var off int64
	for i := range 5000 {
		d := DigestBytes([]byte{byte(i), byte(i >> 8)})
		c.Chunks = append(c.Chunks, Chunk{Digest: d, Offset: off, Size: 60000, StoredSize: 60100})
		off += 60000
	}
	c.Size = off
	c.Digest = DigestBytes(nil)
	for i := range 50000 {
		if i%500 == 0 {
			c.Files = append(c.Files, FileEntry{Path: dirName(i), Type: FileDir, Mode: 0o755, MTime: time.Unix(int64(i), 123456789).UTC()})
		}
		c.Files = append(c.Files, FileEntry{Path: dirName(i) + "/f" + strings.Repeat("0", 5) + ".bin" + string(rune('a'+i%26)) + itoa(i), Type: FileRegular,
			Mode: 0o644, UID: 1000, GID: 1000, Size: 4096, MTime: time.Unix(int64(i), 123456789).UTC(), SHA256: DigestBytes([]byte(itoa(i)))[7:], DataOffset: int64(i) * 5632})
	}
	m.Components = []Component{c}
	enc, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	cpu0, n := cpuTime(), 0
	for b.Loop() {
		if _, err := DecodeManifest(enc); err != nil {
			b.Fatal(err)
		}
		n++
	}
	// Wall time per op is noise on a shared machine; CPU time less so.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n)/1e6, "cpu-ms/op")
}

func dirName(i int) string { return "d" + itoa(i/500) }

func itoa(i int) string { return strconv.Itoa(i) }
