package driver

import (
	"os"

	"golang.org/x/sys/unix"
)

// GrowPipe asks for a pipe buffer of n bytes; best effort (the kernel caps
// it at /proc/sys/fs/pipe-max-size for unprivileged processes).
func GrowPipe(w *os.File, n int) {
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, n)
}
