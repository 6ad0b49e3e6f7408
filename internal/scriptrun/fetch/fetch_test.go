package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(body))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

func write(t *testing.T, name string, kind statepkg.Kind, format string, data []byte) (statepkg.ChunkStore, statepkg.Component) {
	t.Helper()
	store := statepkg.NewMemoryStore()
	c, _, err := statepkg.WriteComponent(context.Background(), store, statepkg.Component{Name: name, Kind: kind}, bytes.NewReader(data), statepkg.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Format = format
	return store, c
}

func TestComponent_UnpacksATarStream(t *testing.T) {
	store, c := write(t, "www", statepkg.KindScript, "tar", tarOf(t,
		&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "css/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "css/site.css", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "index.html", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "home.html", Typeflag: tar.TypeSymlink, Linkname: "index.html"},
	))
	dest := t.TempDir()
	s, err := Component(context.Background(), store, c, dest)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 2 {
		t.Errorf("summary %+v", s)
	}
	b, err := os.ReadFile(filepath.Join(dest, "home.html"))
	if err != nil || string(b) != "content of index.html" {
		t.Errorf("home.html = %q, %v", b, err)
	}
}

func TestComponent_RefusesEntriesLeavingTheDirectory(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "a/../../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"},
		{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		store, c := write(t, "www", statepkg.KindScript, "tar", tarOf(t, h))
		dest := filepath.Join(t.TempDir(), "d")
		if _, err := Component(context.Background(), store, c, dest); err == nil {
			t.Errorf("%s (%s) was accepted", h.Name, h.Linkname)
		}
	}
}

func TestComponent_WritesAnyOtherStreamToOneFile(t *testing.T) {
	store, c := write(t, "index", statepkg.KindScript, "ndjson", []byte(strings.Repeat("{\"a\":1}\n", 100)))
	dest := t.TempDir()
	s, err := Component(context.Background(), store, c, dest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dest, "index"))
	if err != nil || len(b) != 800 || s.File != filepath.Join(dest, "index") {
		t.Errorf("file: %d bytes, %v, %+v", len(b), err, s)
	}
}
