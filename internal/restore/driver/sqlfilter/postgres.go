package sqlfilter

import (
	"bytes"
	"io"
	"regexp"
	"strings"
)

// Postgres returns the script r as psql may read it, or an *Error at the
// first construct that is refused: any psql meta-command (a backslash
// outside strings, quoted identifiers, dollar quotes, comments and COPY
// data) other than pg_dump's own "\restrict KEY"/"\unrestrict KEY" lines
// (dropped: the caller puts psql in restricted mode with a key of its own)
// and the "\." ending COPY data; psql variable interpolation (:'x', :"x");
// and any COPY but COPY ... FROM stdin (so no COPY ... PROGRAM and no
// server files).
func Postgres(r io.Reader) io.Reader { return newReader(r, &pgLexer{}) }

// CheckPostgres reads a whole script and returns the first refusal.
func CheckPostgres(r io.Reader) error { return check(Postgres(r)) }

type pgState int

const (
	pgNormal    pgState = iota
	pgLineCmt           // -- to end of line
	pgBlockCmt          // /* */, nesting
	pgString            // '...' (standard-conforming or not: see odd)
	pgEString           // E'...' with backslash escapes
	pgIdent             // "..."
	pgDollarTag         // after a $ that may open a dollar quote
	pgDollar            // inside $tag$ ... $tag$
	pgAfterCopy         // rest of the line after COPY ... FROM stdin;
	pgCopyData          // COPY data lines up to \.
)

type pgLexer struct {
	st    pgState
	prev  byte // previous byte in normal and comment states (0: none)
	colon int  // run of ':' just seen in normal state

	// word being read in normal state
	word    []byte
	inWord  bool
	numWord bool // the word began with a digit (or is a $n parameter)
	escWord bool // the word is exactly "e"/"E" so far

	depth     int    // block comment nesting
	bslash    int    // run of backslashes inside a '...' string
	escNext   bool   // E'...': the next byte is escaped
	quoteSeen bool   // '...' or "...": a quote that may close or double
	prevHigh  bool   // inside a string: the previous byte is >= 0x80
	inBslash  bool   // inside a string: the previous byte is a backslash
	hiRun     bool   // inside a string: the backslash run began after such a byte
	tag       []byte // dollar quote delimiter "$tag$"
	match     int    // bytes of tag matched so far

	// statement, as psql splits them
	words      int     // words of the statement so far
	tokens     int     // tokens of the statement so far
	first      [4]byte // psql's CREATE [OR REPLACE] FUNCTION|PROCEDURE tracking
	paren      int     // parentheses depth
	begin      int     // BEGIN ... END depth inside CREATE FUNCTION bodies
	hadBegin   bool    // this statement used BEGIN tracking
	prevBegin  bool    // the previous statement did
	copyStmt   bool    // statement starts with COPY
	copyDir    string  // "from"/"to" seen at depth 0, awaiting its source
	copyStdin  bool    // FROM stdin seen
	copyBad    string  // why this COPY is refused
	copyLine   int     // line of the COPY
	empty      bool    // nothing but whitespace/comments since the last statement
	started    bool
	restricted []string // keys of pg_dump's \restrict lines
}

var pgRestrictLine = regexp.MustCompile(`^\\(restrict|unrestrict) ([A-Za-z0-9]{1,256})[ \t]*\r?\n?$`)

func (l *pgLexer) init() {
	if !l.started {
		l.started, l.empty = true, true
	}
}

func (l *pgLexer) line(b []byte, lineNo int) ([]byte, bool, error) {
	l.init()
	if err := refuseNUL(b, lineNo); err != nil {
		return nil, false, err
	}
	switch l.st {
	case pgCopyData:
		if isCopyEnd(b) {
			l.st = pgNormal
			l.prev, l.colon = 0, 0
			return b, true, nil
		}
		return b, true, nil
	case pgNormal:
		if !l.empty || l.inWord || len(b) == 0 || b[0] != '\\' {
			return nil, false, nil
		}
		m := pgRestrictLine.FindSubmatch(b)
		if m == nil {
			return nil, false, nil
		}
		// pg_dump 17.6/16.10/15.14+ brackets a dump with these; they are
		// replaced by the restorer's own key.
		if string(m[1]) == "restrict" {
			l.restricted = append(l.restricted, string(m[2]))
		} else if len(l.restricted) == 0 || l.restricted[len(l.restricted)-1] != string(m[2]) {
			return nil, false, &Error{Line: lineNo, Construct: shorten(b), Reason: "\\unrestrict without the matching \\restrict"}
		}
		return []byte("\n"), true, nil
	}
	return nil, false, nil
}

// isCopyEnd says whether a line ends COPY data as psql sees it.
func isCopyEnd(b []byte) bool {
	return bytes.Equal(b, []byte(`\.`)) || bytes.Equal(b, []byte("\\.\n")) || bytes.Equal(b, []byte("\\.\r\n"))
}

func (l *pgLexer) refuse(lineNo int, b []byte, i int, reason string) error {
	return &Error{Line: lineNo, Construct: shorten(b[max(i, 0):]), Reason: reason}
}

// refuseNUL refuses a NUL byte anywhere, COPY data included: psql reads
// a line only up to it (C strings), so what follows on that line, a
// closing quote or the rest of "\.", is seen here but not by psql, and
// the two readings part. No valid script or COPY text holds one.
func refuseNUL(b []byte, lineNo int) error {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return &Error{Line: lineNo, Construct: shorten(b[:i]), Reason: "a NUL byte (psql ignores the rest of its line)"}
	}
	return nil
}

func (l *pgLexer) lex(b []byte, lineNo int, start bool) error {
	l.init()
	if err := refuseNUL(b, lineNo); err != nil {
		return err
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch l.st {
		case pgCopyData:
			// Only whole lines end the data (handled in line); a piece of a
			// long data line passes as it is.
			return nil
		case pgAfterCopy:
			if c == '\n' {
				l.st = pgCopyData
				return nil
			}
			if !isSpace(c) {
				return l.refuse(lineNo, b, i, "text after COPY ... FROM stdin; on the same line (psql would read it as commands)")
			}
		case pgLineCmt:
			if c == '\n' {
				l.st, l.prev = pgNormal, 0
			}
		case pgBlockCmt:
			switch {
			case l.prev == '/' && c == '*':
				l.depth++
				l.prev = 0
			case l.prev == '*' && c == '/':
				l.depth--
				l.prev = 0
				if l.depth == 0 {
					l.st = pgNormal
				}
			default:
				l.prev = c
			}
		case pgString:
			if err := l.highBackslash(b, i, lineNo); err != nil {
				return err
			}
			// Standard-conforming or not, the string must end at the same
			// quote: refuse a quote after an odd run of backslashes, where
			// the two readings part.
			if l.quoteSeen {
				l.quoteSeen = false
				if c == '\'' {
					l.bslash = 0
					continue // doubled quote
				}
				l.endToken()
				i--
				continue
			}
			switch c {
			case '\\':
				l.bslash++
			case '\'':
				if l.bslash%2 == 1 {
					return l.refuse(lineNo, b, i-l.bslash, "a quote after an odd number of backslashes in a string (its end depends on standard_conforming_strings)")
				}
				l.bslash = 0
				l.quoteSeen = true
			default:
				l.bslash = 0
			}
		case pgEString:
			if err := l.highBackslash(b, i, lineNo); err != nil {
				return err
			}
			if l.escNext {
				l.escNext = false
				continue
			}
			if l.quoteSeen {
				l.quoteSeen = false
				if c == '\'' {
					continue
				}
				l.endToken()
				i--
				continue
			}
			switch c {
			case '\\':
				l.escNext = true
			case '\'':
				l.quoteSeen = true
			}
		case pgIdent:
			if l.quoteSeen {
				l.quoteSeen = false
				if c == '"' {
					continue
				}
				l.endToken()
				i--
				continue
			}
			if c == '"' {
				l.quoteSeen = true
			}
		case pgDollarTag:
			switch {
			case c == '$':
				l.tag = append(l.tag, '$')
				l.st, l.match = pgDollar, 0
			case len(l.tag) == 1 && isDigit(c):
				// $1: a parameter, lexed as a number.
				l.st, l.inWord, l.numWord, l.escWord = pgNormal, true, true, false
				l.word = append(l.word[:0], '$', c)
			case len(l.tag) == 1 && isIdentStart(c), len(l.tag) > 1 && isIdentCont(c):
				l.tag = append(l.tag, c)
			default:
				// "$abc" without a closing "$" is an ordinary token.
				l.st, l.inWord, l.numWord, l.escWord = pgNormal, true, false, false
				l.word = append(l.word[:0], l.tag...)
				i--
			}
		case pgDollar:
			// The delimiter holds "$" only at its ends, so matching can
			// restart at any "$".
			switch c {
			case l.tag[l.match]:
				l.match++
				if l.match == len(l.tag) {
					l.st = pgNormal
					l.endToken()
				}
			case '$':
				l.match = 1
			default:
				l.match = 0
			}
		case pgNormal:
			if err := l.normal(b, i, lineNo); err != nil {
				return err
			}
		}
	}
	return nil
}

// highBackslash tracks, inside '...' and E'...' strings, backslash runs
// that follow a byte >= 0x80, and refuses a quote after one. In the
// client encodings psql lexes as "unsafe" (SJIS, BIG5, GBK, UHC,
// GB18030, JOHAB; a script switches with SET client_encoding or
// set_config) such a backslash is the second byte of a character
// (SJIS "\x83\x5c"), not an escape, so psql and the server would end the
// string at a quote this filter reads as escaped (or the other way), and
// read the rest of the line as commands.
func (l *pgLexer) highBackslash(b []byte, i, lineNo int) error {
	c := b[i]
	hi := l.prevHigh
	l.prevHigh = c >= 0x80
	if c == '\\' {
		if !l.inBslash {
			l.hiRun = hi
		}
		l.inBslash = true
		return nil
	}
	run := l.inBslash && l.hiRun
	l.inBslash, l.hiRun = false, false
	if c == '\'' && run {
		return l.refuse(lineNo, b, i, "a quote after backslashes that follow a non-ASCII byte in a string (in client encodings such as SJIS the backslash is part of a character)")
	}
	return nil
}

// endToken returns to normal state after a quoted token.
func (l *pgLexer) endToken() {
	l.st = pgNormal
	l.prev, l.colon = 0, 0
	l.inWord = false
	l.note("")
}

func (l *pgLexer) normal(b []byte, i, lineNo int) error {
	c := b[i]
	// Words: identifiers and keywords, numbers.
	if l.inWord {
		switch {
		case isIdentCont(c):
			l.addWord(c)
			return nil
		case c == '$' && !l.numWord:
			l.addWord(c) // identifiers may hold "$"
			return nil
		case c == '$':
			return l.refuse(lineNo, b, i, `"$" right after a number (psql and the server may read it differently)`)
		case c == '.' && l.numWord:
			l.addWord(c)
			return nil
		case c == '\'' && l.escWord:
			l.inWord = false
			l.st, l.quoteSeen, l.escNext = pgEString, false, false
			l.prevHigh, l.inBslash, l.hiRun = false, false, false
			l.note("")
			return nil
		}
		l.inWord = false
		if err := l.endWord(lineNo, b, i); err != nil {
			return err
		}
	}
	// :name, :'name', :"name": psql pastes a variable's value in and
	// lexes it, backslash commands included.
	if l.colon == 1 && (c == '\'' || c == '"' || isIdentStart(c)) {
		return l.refuse(lineNo, b, i-1, "psql variable interpolation")
	}
	if c == ':' {
		l.colon++
	} else {
		l.colon = 0
	}
	prev := l.prev
	l.prev = c
	switch {
	case isSpace(c):
		return nil
	case c == '\\':
		return l.refuse(lineNo, b, i, "psql meta-command")
	case prev == '-' && c == '-':
		l.st = pgLineCmt
		return nil
	case prev == '/' && c == '*':
		l.st, l.depth, l.prev = pgBlockCmt, 1, 0
		return nil
	case c == '-' || c == '/':
		// may start a comment: decided by the next byte
		return nil
	case c == '\'':
		l.st, l.bslash, l.quoteSeen = pgString, 0, false
		l.prevHigh, l.inBslash, l.hiRun = false, false, false
		l.note("")
	case c == '"':
		l.st, l.quoteSeen = pgIdent, false
		l.note("")
	case c == '$':
		l.st = pgDollarTag
		l.tag = append(l.tag[:0], '$')
	case isIdentStart(c):
		l.inWord, l.numWord = true, false
		l.word = append(l.word[:0], c)
		l.escWord = c == 'e' || c == 'E'
	case isDigit(c):
		l.inWord, l.numWord, l.escWord = true, true, false
		l.word = append(l.word[:0], c)
	case c == '(':
		l.paren++
		l.note("")
	case c == ')':
		if l.paren > 0 {
			l.paren--
		}
		l.note("")
	case c == ';':
		if l.paren == 0 && l.begin == 0 {
			return l.endStatement(lineNo, b, i)
		}
		l.note("")
	default:
		l.note("")
	}
	return nil
}

func (l *pgLexer) addWord(c byte) {
	if len(l.word) < 64 {
		l.word = append(l.word, c)
	}
	l.escWord = false
}

// note records a token of the current statement (w: a lower-cased word,
// "" for anything else).
func (l *pgLexer) note(w string) {
	l.empty = false
	l.tokens++
	if l.copyStmt && l.paren == 0 && l.copyDir != "" {
		if w != "stdin" || l.copyDir != "from" {
			if w == "program" {
				l.copyBad = "COPY ... PROGRAM (runs a program on the database server)"
			} else if l.copyBad == "" {
				l.copyBad = "COPY other than COPY ... FROM stdin (server files, STDOUT)"
			}
		} else {
			l.copyStdin = true
		}
		l.copyDir = ""
		return
	}
	if l.copyStmt && l.paren == 0 && (w == "from" || w == "to") {
		l.copyDir = w
	}
}

func (l *pgLexer) endWord(lineNo int, b []byte, i int) error {
	if l.numWord {
		l.note("")
		return nil
	}
	w := strings.ToLower(string(l.word))
	if l.tokens == 0 {
		l.copyStmt = w == "copy"
		l.copyLine = lineNo
		if l.copyStmt && l.prevBegin {
			return l.refuse(lineNo, b, i-len(l.word), "COPY right after a function body with BEGIN ... END (where psql's statement boundary is uncertain)")
		}
	}
	// psql's heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE ...
	// BEGIN ATOMIC ... END bodies, whose semicolons do not end the
	// statement.
	if l.words < len(l.first) {
		switch w {
		case "create", "function", "procedure", "or", "replace":
			l.first[l.words] = w[0]
		}
	}
	l.words++
	f := l.first
	if f[0] == 'c' && (f[1] == 'f' || f[1] == 'p' || (f[1] == 'o' && f[2] == 'r' && (f[3] == 'f' || f[3] == 'p'))) && l.paren == 0 {
		switch w {
		case "begin":
			l.begin++
			l.hadBegin = true
		case "case":
			if l.begin >= 1 {
				l.begin++
			}
		case "end":
			if l.begin > 0 {
				l.begin--
			}
		}
	}
	l.note(w)
	return nil
}

func (l *pgLexer) endStatement(lineNo int, b []byte, i int) error {
	copyStmt, stdin, bad := l.copyStmt, l.copyStdin, l.copyBad
	if copyStmt && l.copyDir != "" && bad == "" {
		bad = "COPY other than COPY ... FROM stdin (server files, STDOUT)"
	}
	l.prevBegin = l.hadBegin
	l.words, l.tokens, l.first, l.paren, l.begin, l.hadBegin = 0, 0, [4]byte{}, 0, 0, false
	l.copyStmt, l.copyDir, l.copyStdin, l.copyBad = false, "", false, ""
	l.empty, l.prev, l.colon = true, 0, 0
	if !copyStmt {
		return nil
	}
	if bad != "" {
		return &Error{Line: lineNo, Construct: shorten(b), Reason: bad}
	}
	if !stdin {
		return &Error{Line: lineNo, Construct: shorten(b), Reason: "COPY other than COPY ... FROM stdin (server files, STDOUT)"}
	}
	l.st = pgAfterCopy
	_ = i
	return nil
}

func (l *pgLexer) end(lineNo int) error {
	// A script that stops inside a string, a comment or COPY data was cut
	// short (pg_dump ends COPY data with "\."): refuse it rather than
	// restore part of it.
	inside := map[pgState]string{pgString: "a string", pgEString: "a string", pgIdent: "a quoted identifier",
		pgDollar: "a dollar-quoted string", pgBlockCmt: "a comment", pgCopyData: `COPY data (no "\." line)`, pgAfterCopy: `COPY data (no "\." line)`}
	if what, ok := inside[l.st]; ok && !l.quoteSeen {
		return &Error{Line: lineNo, Reason: "the script ends inside " + what + ": it is truncated (dump it again)"}
	}
	if l.inWord {
		l.inWord = false
		if err := l.endWord(lineNo, nil, 0); err != nil {
			return err
		}
	}
	if l.copyStmt {
		// A COPY without its ";" is never sent.
		return nil
	}
	return nil
}
