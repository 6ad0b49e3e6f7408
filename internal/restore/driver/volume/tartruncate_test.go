package volume

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// An archive cut between two entries reads like a shorter, complete one to
// archive/tar; capture refuses it for its missing end-of-archive blocks.
func TestVolume_TarCutBetweenEntriesIsRefused(t *testing.T) {
	p := writeTar(t,
		tarEntry{hdr: tar.Header{Name: "a.txt"}, data: strings.Repeat("a", 700)},
		tarEntry{hdr: tar.Header{Name: "b.txt"}, data: "b"},
	)
	whole, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := captureTar(context.Background(), p, io.Discard, nil, "files"); err != nil {
		t.Fatalf("whole archive: %v", err)
	}
	// header 512 + data 700 padded to 1024: the cut leaves a.txt only.
	if err := os.WriteFile(p, whole[:512+1024], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = captureTar(context.Background(), p, io.Discard, nil, "files")
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("capture of a cut archive: %v; want it refused as truncated", err)
	}
	t.Log(err)
}
