//go:build linux || darwin

package volume

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// listDirPortable is listDir through os.File.Readdirnames, for platforms
// without getdents (sys_linux.go's listDir, which reads the directory
// without allocating an os.File per call, serves Linux). It reads a
// duplicate of fd, which it closes; fd stays open.
func listDirPortable(fd int, top, names bool) (int, []string, error) {
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return 0, nil, err
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return 0, nil, err
	}
	unix.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), "directory")
	defer f.Close()
	all, err := f.Readdirnames(-1)
	if err != nil {
		return 0, nil, err
	}
	var out []string
	count := 0
	for _, name := range all {
		if name == "." || name == ".." || (top && reserved(name)) {
			continue
		}
		count++
		if names {
			out = append(out, name)
		}
	}
	return count, out, nil
}
