//go:build !linux

package statepkg

import (
	"fmt"
	"io"
	"os"
)

// readFileInto reads a whole file into buf's capacity when large enough.
// Chunk files are written whole and renamed into place, so their size does
// not change under us.
func readFileInto(p string, buf []byte) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := fi.Size()
	if n > maxChunkFile {
		return nil, fmt.Errorf("%w: %d bytes", errTooLarge, n)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
