package volume

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
)

// A target on a real filesystem that fills up half-way through the new
// version: the apply fails saying so, and the target keeps the previous
// version exactly, with no staging left taking the space.
func TestVolume_FullDiskLeavesPreviousData(t *testing.T) {
	src1, src2 := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src1, "a.txt"), []byte("version one"), 0o644)
	write(t, filepath.Join(src1, "keep/notes.txt"), bytes.Repeat([]byte("n"), 100<<10), 0o600)
	// 6 MiB of new files for a 4 MiB disk.
	for _, name := range []string{"big/one", "big/two", "big/three"} {
		write(t, filepath.Join(src2, name), bytes.Repeat([]byte(name), 2<<20/len(name)), 0o644)
	}
	write(t, filepath.Join(src2, "a.txt"), []byte("version two"), 0o644)
	store := newStore(t)
	c1, c2 := capture(t, src1, store), capture(t, src2, store)

	dst := filepath.Join(drivertest.SmallDisk(t, 4<<20), "target")
	if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dst)
	_, err := apply(t, context.Background(), c2, store, dst, nil)
	if err == nil {
		t.Fatal("apply onto a full disk succeeded; want an error")
	}
	t.Logf("error: %v", err)
	for _, part := range []string{"restore files: ", "no space left on device"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	diffSnapshots(t, before, snapshot(t, dst))
	noStaging(t, dst)
	if m := ReadMarker(dst); m == nil || m.ComponentDigest != c1.Digest {
		t.Errorf("marker changed: %+v", m)
	}
}
