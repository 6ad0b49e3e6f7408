package volume

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

type tarEntry struct {
	hdr  tar.Header
	data string
}

func writeTar(t *testing.T, entries ...tarEntry) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		h.ModTime = mtime
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVolume_TarArchiveRoundTrip(t *testing.T) {
	p := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "./app/config.yaml"}, data: "a: 1\n"},
		tarEntry{hdr: tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o750}},
		tarEntry{hdr: tar.Header{Name: "app/link", Typeflag: tar.TypeSymlink, Linkname: "config.yaml"}},
		tarEntry{hdr: tar.Header{Name: "app/hard", Typeflag: tar.TypeLink, Linkname: "app/config.yaml"}},
	)
	if k, err := driver.KindOf(p); err != nil || k != "volume" {
		t.Fatalf("KindOf = %s, %v", k, err)
	}
	store := newStore(t)
	c := capture(t, p, store)
	dst := t.TempDir()
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "app/hard"))
	if err != nil || string(b) != "a: 1\n" {
		t.Fatalf("hardlink content %q %v", b, err)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "app/link")); l != "config.yaml" {
		t.Errorf("symlink -> %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "app/config.yaml")); !fi.ModTime().Equal(mtime.Truncate(time.Second)) {
		t.Errorf("mtime %v", fi.ModTime())
	}
}

func TestVolume_RefusesHostileTarEntries(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dotdot", []tarEntry{{hdr: tar.Header{Name: "../evil"}, data: "x"}}, "leaves the target"},
		{"nested dotdot", []tarEntry{{hdr: tar.Header{Name: "a/../../evil"}, data: "x"}}, "leaves the target"},
		{"absolute", []tarEntry{{hdr: tar.Header{Name: "/etc/cron.d/evil"}, data: "x"}}, "absolute path"},
		{"symlink outside", []tarEntry{{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../../etc"}}}, "points outside"},
		{"absolute symlink", []tarEntry{{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}}, "points outside"},
		{"write through symlink", []tarEntry{
			{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "sub"}},
			{hdr: tar.Header{Name: "l/passwd"}, data: "x"}}, "not a directory"},
		{"char device", []tarEntry{{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}, "device file"},
		{"fifo", []tarEntry{{hdr: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo}}}, "device file or FIFO"},
		{"hardlink outside", []tarEntry{{hdr: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}}}, "does not name a regular file"},
		{"reserved name", []tarEntry{{hdr: tar.Header{Name: MarkerName}, data: "{}"}}, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTar(t, tt.entries...)
			_, err := New().Capture(context.Background(), driver.Source{URL: p}, io.Discard, nil)
			if err == nil || !errors.Is(err, ErrHostileIndex) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want a refusal mentioning %q", err, tt.want)
			}
		})
	}
}

func TestVolume_RefusesTarSizeClaimBeyondArchive(t *testing.T) {
	// A header claiming 10 GB followed by a few bytes: a zip-bomb claim.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Size: 10 << 30, Mode: 0o644, ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// No Close: the entry stays short of its claimed size on purpose.
	if _, err := tw.Write([]byte("tiny")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bomb.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New().Capture(context.Background(), driver.Source{URL: p}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "claims 10737418240 bytes") {
		t.Fatalf("err = %v", err)
	}
}
