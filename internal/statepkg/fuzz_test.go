package statepkg

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"shop/seed", "shop/seed:v1.2", "shop/seed:@latest", "shop/seed:@candidate", "shop/seed:@new-candidate",
		"shop/seed:@random", "shop/seed:[cand]-x", "shop/seed@sha256:" + testHex, "shop/seed:sha256:" + testHex,
		"", "/", ":", "@", "a/b:", "a/b@", "a/b:..", "A/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("ParseRef(%q) error %v does not wrap ErrInvalidRef", s, err)
			}
		} else {
			if ValidateName(r.Project) != nil || ValidateName(r.State) != nil {
				t.Fatalf("ParseRef(%q) accepted bad names: %+v", s, r)
			}
			again, err := ParseRef(r.String())
			if err != nil || again != r {
				t.Fatalf("ParseRef(%q) = %+v; String %q parses to %+v, %v", s, r, r.String(), again, err)
			}
			if _, err := r.Expr(); err != nil {
				t.Fatalf("Expr of parsed %q: %v", s, err)
			}
		}

		e, err := ParseTagExpr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("ParseTagExpr(%q) error %v does not wrap ErrInvalidRef", s, err)
			}
			return
		}
		if e.String() != s {
			t.Fatalf("ParseTagExpr(%q).String() = %q", s, e.String())
		}
		if e.Kind == TagLiteral {
			if ValidateTag(s) != nil {
				t.Fatalf("literal %q fails ValidateTag", s)
			}
			if p, err := PromoteTag(s); IsCandidate(s) && (err != nil || ValidateTag(p) != nil) {
				t.Fatalf("PromoteTag(%q) = %q, %v", s, p, err)
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	// Compact seeds: the fuzzer minimises every new input it keeps, and that
	// is slow on large documents.
	d := DigestBytes([]byte("x"))
	f.Add([]byte(`{"schemaVersion":1,"state":"a/b","createdAt":"2026-01-01T00:00:00Z","components":[` +
		`{"name":"d","kind":"postgres","format":"f","size":1,"digest":"` + d + `","chunks":[{"digest":"` + d + `","offset":0,"size":1}],"meta":{"k":"v"}},` +
		`{"name":"v","kind":"volume","format":"tar","size":1,"digest":"` + d + `","chunks":[{"digest":"` + d + `","offset":0,"size":1,"storedSize":9}],"files":[` +
		`{"path":"a","type":"dir","mode":493,"uid":0,"gid":0,"mtime":"0001-01-01T00:00:00Z"},` +
		`{"path":"a/f","type":"file","mode":420,"uid":1,"gid":1,"size":1,"mtime":"2026-01-01T00:00:00+02:00","sha256":"` + testHex + `"},` +
		`{"path":"a/l","type":"symlink","mode":0,"uid":0,"gid":0,"mtime":"0001-01-01T00:00:00Z","linkname":"f"},` +
		`{"path":"a/h","type":"hardlink","mode":0,"uid":0,"gid":0,"mtime":"0001-01-01T00:00:00Z","linkname":"a/f"}]}]}`))
	f.Add([]byte(`{"schemaVersion":1,"components":[]}`))
	f.Add([]byte(`{"schemaVersion":2}`))
	f.Add([]byte(`{"schemaVersion":1,"components":[{"name":"a","kind":"volume","digest":"sha256:` + testHex + `","chunks":[],"files":[{"path":"../x","type":"file"}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrUnsupportedSchema) {
				t.Fatalf("error %v wraps neither ErrInvalidManifest nor ErrUnsupportedSchema", err)
			}
			return
		}
		// Whatever decodes must re-encode, and canonically.
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		m2, err := DecodeManifest(enc)
		if err != nil {
			t.Fatalf("canonical encoding does not decode: %v\n%s", err, enc)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n%s\n%s", err, enc, enc2)
		}
	})
}
