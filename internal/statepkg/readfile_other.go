//go:build !linux

package statepkg

func readFileInto(p string, buf []byte) ([]byte, error) { return readFileIntoPortable(p, buf) }
