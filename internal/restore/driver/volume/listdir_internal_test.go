//go:build linux || darwin

package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The portable listing (macOS's) agrees with the getdents one (Linux's) on
// a directory with more entries than one getdents buffer holds, reserved
// names at the top and a subdirectory; and it leaves the fd open and
// reusable.
func TestListDirPortable_AgreesWithListDir(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 1500 {
		name := fmt.Sprintf("file-with-a-long-name-%04d", i)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sub")
	for _, n := range []string{MarkerName, stagingPrefix + "x"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	slices.Sort(want)
	for _, top := range []bool{true, false} {
		for range 2 { // twice: each call reads from the start
			n, names, err := listDirPortable(fd, top, true)
			if err != nil {
				t.Fatalf("top=%v: %v", top, err)
			}
			gn, gnames, err := listDir(fd, top, true)
			if err != nil {
				t.Fatalf("listDir top=%v: %v", top, err)
			}
			slices.Sort(names)
			slices.Sort(gnames)
			if !slices.Equal(names, gnames) || n != gn {
				t.Fatalf("top=%v: portable listed %d %v, listDir %d %v", top, n, len(names), gn, len(gnames))
			}
			exp := want
			if !top {
				exp = slices.Sorted(slices.Values(append(slices.Clone(want), MarkerName, stagingPrefix+"x")))
			}
			if !slices.Equal(names, exp) || n != len(exp) {
				t.Fatalf("top=%v: listed %d names, want %d", top, n, len(exp))
			}
			if c, _, err := listDirPortable(fd, top, false); err != nil || c != n {
				t.Fatalf("top=%v: counting only: %d, %v; want %d", top, c, err, n)
			}
		}
	}
}
