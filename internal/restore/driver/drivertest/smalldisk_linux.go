package drivertest

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// SmallDisk mounts a tmpfs of size bytes for the test and returns its path:
// a real filesystem that fills up. It skips the test where mounting is not
// allowed (not root), unless UNIKUBE_TESTENV_REQUIRE=1.
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0777", size)); err != nil {
		// make test (UNIKUBE_TESTENV_REQUIRE=1) runs as root: there a
		// failed mount is a failure, not a reason to skip.
		if os.Getenv("UNIKUBE_TESTENV_REQUIRE") == "1" {
			t.Fatalf("mount a %d-byte tmpfs for a full disk: %v", size, err)
		}
		t.Skipf("mount a %d-byte tmpfs for a full disk (needs root): %v", size, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
