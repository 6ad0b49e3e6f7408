package statepkg

import (
	"fmt"
	"io"
	"io/fs"

	"golang.org/x/sys/unix"
)

// readFileInto is readfile_other.go's os.Open version with raw system calls: open, fstat,
// read, close, without the runtime poller's per-file setup, which counts
// when a restore reads tens of thousands of chunk files.
func readFileInto(p string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	n := st.Size
	if n > maxChunkFile {
		return nil, fmt.Errorf("%w: %d bytes", errTooLarge, n)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	for off := 0; off < len(buf); {
		m, err := unix.Read(fd, buf[off:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			return nil, &fs.PathError{Op: "read", Path: p, Err: io.ErrUnexpectedEOF}
		}
		off += m
	}
	return buf, nil
}
