package driver

import "bytes"

// Lines is an io.Writer that hands each complete line (newline included)
// to Line, holding a partial line until its end arrives: the dump
// summarizers read a dump as it streams past, a line at a time.
type Lines struct {
	Line func([]byte)
	buf  []byte
}

func (w *Lines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			break
		}
		if len(w.buf) > 0 {
			w.buf = append(w.buf, p[:i+1]...)
			w.Line(w.buf)
			w.buf = w.buf[:0]
		} else {
			w.Line(p[:i+1])
		}
		p = p[i+1:]
	}
	return n, nil
}

// Flush hands a last line that has no newline to Line, with one added.
func (w *Lines) Flush() {
	if len(w.buf) > 0 {
		w.Line(append(w.buf, '\n'))
		w.buf = nil
	}
}
