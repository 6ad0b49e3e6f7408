package statepkg

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// fastDecodeManifest parses the JSON that Encode writes, without reflection:
// a volume's file index of 50,000 entries takes encoding/json ~300 ms (most
// of a no-op re-apply), this a tenth of that. It accepts only a strict
// subset of JSON (known, case-exact, unrepeated keys; plain integers; no
// nulls) on which its result is exactly encoding/json's; for anything else
// it returns ok=false and the caller decodes with encoding/json, which also
// produces the errors. Strings with escapes or non-ASCII bytes, and times,
// are handed to encoding/json and time.Time's own decoder one value at a
// time, so their semantics are encoding/json's by construction.
func fastDecodeManifest(b []byte) (m *Manifest, ok bool) {
	d := &fastDec{b: b}
	m = &Manifest{}
	d.manifest(m)
	d.ws()
	if d.bad || d.i != len(d.b) {
		return nil, false
	}
	return m, true
}

type fastDec struct {
	b   []byte
	i   int
	bad bool
}

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte without consuming it.
func (d *fastDec) next() byte {
	d.ws()
	if d.i >= len(d.b) {
		d.bad = true
		return 0
	}
	return d.b[d.i]
}

func (d *fastDec) expect(c byte) {
	if d.next() != c {
		d.bad = true
		return
	}
	d.i++
}

// object calls field for each key of an object, rejecting repeated keys
// (encoding/json keeps the last; fields report their bit in seen).
func (d *fastDec) object(field func(key []byte) (bit uint32)) {
	d.expect('{')
	if d.bad {
		return
	}
	if d.next() == '}' {
		d.i++
		return
	}
	var seen uint32
	for !d.bad {
		key := d.rawString()
		d.expect(':')
		if d.bad {
			return
		}
		bit := field(key)
		if bit == 0 || seen&bit != 0 {
			d.bad = true
			return
		}
		seen |= bit
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.bad = true
		}
	}
}

// stringMap parses an object of strings into a map; a repeated key keeps
// its last value, as with encoding/json.
func (d *fastDec) stringMap() map[string]string {
	m := map[string]string{}
	d.expect('{')
	if d.bad || d.next() == '}' {
		d.i++
		return m
	}
	for !d.bad {
		key := d.rawString()
		d.expect(':')
		v := d.str()
		if d.bad {
			return m
		}
		m[string(key)] = v
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return m
		default:
			d.bad = true
		}
	}
	return m
}

// array calls elem for each element of an array.
func (d *fastDec) array(elem func()) {
	d.expect('[')
	if d.bad {
		return
	}
	if d.next() == ']' {
		d.i++
		return
	}
	for !d.bad {
		elem()
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return
		default:
			d.bad = true
		}
	}
}

// rawString returns the bytes of a string without escapes or non-ASCII
// bytes (keys), failing on anything else.
func (d *fastDec) rawString() []byte {
	if d.next() != '"' {
		d.bad = true
		return nil
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			d.i = j + 1
			return d.b[start:j]
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			break
		}
	}
	d.bad = true
	return nil
}

// stringLit returns the extent [start, end) of a string literal, quotes
// included, and whether it holds only plain printable ASCII.
func (d *fastDec) stringLit() (start, end int, plain bool) {
	if d.next() != '"' {
		d.bad = true
		return 0, 0, false
	}
	start = d.i
	plain = true
	for j := start + 1; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return start, j + 1, plain
		case c == '\\':
			plain = false
			j++ // the escaped byte; encoding/json checks the escape itself
		case c < 0x20:
			d.bad = true
			return 0, 0, false
		case c >= 0x80:
			plain = false
		}
	}
	d.bad = true
	return 0, 0, false
}

func (d *fastDec) str() string {
	start, end, plain := d.stringLit()
	if d.bad {
		return ""
	}
	if plain {
		// One allocation per value: slicing one copy of the whole
		// input measured slower (its fresh pages cost more than the GC).
		return string(d.b[start+1 : end-1])
	}
	var s string
	if json.Unmarshal(d.b[start:end], &s) != nil {
		d.bad = true
	}
	return s
}

// kind returns the common file types and kinds without allocating.
func (d *fastDec) constStr() string {
	start, end, plain := d.stringLit()
	if d.bad {
		return ""
	}
	if plain {
		switch v := d.b[start+1 : end-1]; string(v) {
		case FileRegular:
			return FileRegular
		case FileDir:
			return FileDir
		case FileSymlink:
			return FileSymlink
		case FileHardlink:
			return FileHardlink
		}
	}
	d.i = start
	return d.str()
}

func (d *fastDec) time() time.Time {
	start, end, plain := d.stringLit()
	var t time.Time
	if d.bad || !plain || t.UnmarshalJSON(d.b[start:end]) != nil {
		d.bad = true
	}
	return t
}

// int parses a JSON integer: -?(0|[1-9][0-9]*) with no fraction or
// exponent (which encoding/json refuses for integer fields).
func (d *fastDec) int() int64 {
	d.ws()
	start := d.i
	j := start
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	if j == digits || (d.b[digits] == '0' && j-digits > 1) {
		d.bad = true
		return 0
	}
	if j < len(d.b) {
		switch d.b[j] {
		case '.', 'e', 'E':
			d.bad = true
			return 0
		}
	}
	n, err := strconv.ParseInt(string(d.b[start:j]), 10, 64)
	if err != nil {
		d.bad = true
		return 0
	}
	d.i = j
	return n
}

// intInt is int for a Go int field.
func (d *fastDec) intInt() int {
	n := d.int()
	if n < math.MinInt || n > math.MaxInt {
		d.bad = true
	}
	return int(n)
}

func (d *fastDec) manifest(m *Manifest) {
	d.object(func(k []byte) uint32 {
		switch string(k) {
		case "schemaVersion":
			m.SchemaVersion = d.intInt()
			return 1 << 0
		case "state":
			m.State = d.str()
			return 1 << 1
		case "revision":
			m.Revision = d.str()
			return 1 << 2
		case "message":
			m.Message = d.str()
			return 1 << 3
		case "createdAt":
			m.CreatedAt = d.time()
			return 1 << 4
		case "components":
			m.Components = []Component{}
			d.array(func() {
				m.Components = append(m.Components, Component{})
				d.component(&m.Components[len(m.Components)-1])
			})
			return 1 << 5
		}
		return 0
	})
}

func (d *fastDec) component(c *Component) {
	d.object(func(k []byte) uint32 {
		switch string(k) {
		case "name":
			c.Name = d.str()
			return 1 << 0
		case "kind":
			c.Kind = Kind(d.str())
			return 1 << 1
		case "format":
			c.Format = d.str()
			return 1 << 2
		case "size":
			c.Size = d.int()
			return 1 << 3
		case "digest":
			c.Digest = d.str()
			return 1 << 4
		case "chunks":
			c.Chunks = []Chunk{}
			d.array(func() {
				c.Chunks = append(c.Chunks, Chunk{})
				d.chunk(&c.Chunks[len(c.Chunks)-1])
			})
			return 1 << 5
		case "files":
			// Sized up front: growing a slice of 50,000 entries by doubling
			// costs more than parsing them. Every entry is an object, so
			// the braces left (a vectorised count) bound this array's
			// entries; a much larger bound is trimmed below.
			c.Files = make([]FileEntry, 0, bytes.Count(d.b[d.i:], []byte{'{'}))
			d.array(func() {
				c.Files = append(c.Files, FileEntry{})
				d.file(&c.Files[len(c.Files)-1])
			})
			if cap(c.Files) > 2*len(c.Files)+1024 {
				c.Files = slices.Clip(slices.Clone(c.Files))
			}
			return 1 << 6
		case "meta":
			c.Meta = d.stringMap()
			return 1 << 7
		}
		return 0
	})
}

func (d *fastDec) chunk(ch *Chunk) {
	d.object(func(k []byte) uint32 {
		switch string(k) {
		case "digest":
			ch.Digest = d.str()
			return 1 << 0
		case "offset":
			ch.Offset = d.int()
			return 1 << 1
		case "size":
			ch.Size = d.int()
			return 1 << 2
		case "storedSize":
			ch.StoredSize = d.int()
			return 1 << 3
		}
		return 0
	})
}

func (d *fastDec) file(f *FileEntry) {
	d.object(func(k []byte) uint32 {
		switch string(k) {
		case "path":
			f.Path = d.str()
			return 1 << 0
		case "type":
			f.Type = d.constStr()
			return 1 << 1
		case "mode":
			n := d.int()
			if n < 0 || n > math.MaxUint32 {
				d.bad = true
			}
			f.Mode = uint32(n)
			return 1 << 2
		case "uid":
			f.UID = d.intInt()
			return 1 << 3
		case "gid":
			f.GID = d.intInt()
			return 1 << 4
		case "size":
			f.Size = d.int()
			return 1 << 5
		case "mtime":
			f.MTime = d.time()
			return 1 << 6
		case "sha256":
			f.SHA256 = d.str()
			return 1 << 7
		case "linkname":
			f.Linkname = d.str()
			return 1 << 8
		case "dataOffset":
			f.DataOffset = d.int()
			return 1 << 9
		}
		return 0
	})
}
