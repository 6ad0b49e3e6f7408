// Package sqlfilter checks SQL scripts from a package before a database
// client (psql, mariadb/mysql) reads them. A package is data: nothing in it
// may run a program on the restorer's machine, read its files or touch a
// database other than the one being restored into. The clients obey
// backslash meta-commands (psql's \! and \o |cmd, the mysql client's
// \! and system) wherever their lexers see them, so the filters lex the
// script as the clients do (strings, quoted identifiers, dollar quotes,
// comments, COPY data) and refuse, naming the line, every client command
// except the few real dumps contain, plus the SQL that escapes the
// restore (COPY ... PROGRAM, USE, other databases' names).
//
// Where the client's and the server's reading could differ (a quote after
// an odd number of backslashes, a "$" after a number), the filters refuse
// rather than guess. The filters stream: memory does not grow with the
// script, and what is refused has not been passed on past the line before
// it (a caller feeds a client that aborts when the stream errors).
package sqlfilter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Error is a refused construct of a script.
type Error struct {
	Line      int    // 1-based line of the script
	Construct string // the offending text, shortened
	Reason    string // why it is refused
}

func (e *Error) Error() string {
	if e.Construct == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %q is refused (a package is data: it may not run client commands or touch other databases)", e.Line, e.Reason, e.Construct)
}

// IsRefused reports whether err is (or wraps) a refused construct.
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// maxLine bounds what is buffered to look at one whole line (meta-command
// lines, DELIMITER lines); longer lines are lexed in pieces.
const maxLine = 64 << 10

// lexer is what a dialect implements: it consumes one piece of a line
// (start says the piece begins a line) and returns what to pass on.
type lexer interface {
	// line handles a whole line (including its "\n", if any) that starts
	// in a state where a client command could begin it; it returns
	// (out, true) when it handled the line, or false to lex it normally.
	line(b []byte, lineNo int) ([]byte, bool, error)
	// lex consumes a piece, updating the state; it returns an error for a
	// refused construct.
	lex(b []byte, lineNo int, start bool) error
	// end is called at the end of the script.
	end(lineNo int) error
}

// reader streams a script through a lexer.
type reader struct {
	br     *bufio.Reader
	lx     lexer
	lineNo int
	start  bool // next byte starts a line
	out    []byte
	err    error
}

func newReader(r io.Reader, lx lexer) *reader {
	return &reader{br: bufio.NewReaderSize(r, maxLine), lx: lx, start: true}
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill lexes the next line or piece into r.out, or sets r.err.
func (r *reader) fill() {
	b, err := r.br.ReadSlice('\n')
	if len(b) > 0 {
		if r.start {
			r.lineNo++
			if err == nil || errors.Is(err, io.EOF) {
				out, handled, lerr := r.lx.line(b, r.lineNo)
				if lerr != nil {
					r.err = lerr
					return
				}
				if handled {
					r.out = out
					r.start = true
					r.setErr(err)
					return
				}
			}
		}
		if lerr := r.lx.lex(b, r.lineNo, r.start); lerr != nil {
			r.err = lerr
			return
		}
		r.out = b
		r.start = b[len(b)-1] == '\n'
	}
	r.setErr(err)
}

func (r *reader) setErr(err error) {
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		if lerr := r.lx.end(r.lineNo); lerr != nil {
			r.err = lerr
			r.out = nil
			return
		}
		r.err = io.EOF
	default:
		r.err = err
	}
}

// check reads a filtered script to its end.
func check(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// shorten returns the start of b for an error message.
func shorten(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) }
