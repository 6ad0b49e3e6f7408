package sqlfilter

import (
	"io"
	"regexp"
	"slices"
	"strings"
)

// MySQLOptions configure the MySQL/MariaDB filter.
type MySQLOptions struct {
	// Databases are names the script may not qualify objects with (the
	// server's other databases, the target itself); compared without
	// case. The system schemas are always refused.
	Databases []string
}

// MySQL returns the script r as the mariadb/mysql client may read it, or an
// *Error at the first construct that is refused. The script must consist of
// the statements dumps hold (SET, CREATE/DROP/ALTER of tables, views,
// triggers, routines and events, INSERT, LOCK/UNLOCK TABLES, transactions),
// with DELIMITER lines; client commands (\!, system, source, tee, pager,
// connect, use ...), statements touching other databases (names qualified
// with a database of Options.Databases or a system schema, any
// three-part name, CREATE/DROP/ALTER DATABASE, USE), server files (INTO
// OUTFILE, LOAD DATA, LOAD_FILE), dynamic SQL (PREPARE/EXECUTE), grants and
// global settings are refused, as are settings that would change how the
// script is lexed (an sql_mode with NO_BACKSLASH_ESCAPES or ANSI_QUOTES, a
// client character set whose multibyte characters can hide a backslash).
//
// The header a dump made with --databases starts with (CREATE DATABASE
// `db` and USE `db`, for one database) is dropped, so the script restores
// into the database the client was started on.
func MySQL(r io.Reader, o MySQLOptions) io.Reader {
	l := &myLexer{delim: ";", forbidden: map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}, safeVars: map[string]string{}}
	for _, d := range o.Databases {
		l.forbidden[strings.ToLower(d)] = true
	}
	return newReader(r, l)
}

// CheckMySQL reads a whole script and returns the first refusal.
func CheckMySQL(r io.Reader, o MySQLOptions) error { return check(MySQL(r, o)) }

type myState int

const (
	myNormal    myState = iota
	myLineCmt           // # or -- to end of line
	myDashDash          // after "--": a comment if whitespace follows
	myBlockCmt          // /* */
	mySlashStar         // after "/*": "!" or "M!" makes it executable
	myVersion           // digits after "/*!" or "/*M!"
	myString            // '...' or "..." (quote in q)
	myBacktick          // `...`
)

type myToken struct {
	kind byte   // 'w' word, 'q' quoted identifier, 's' string, 'v' @var, 'S' @@, or the punctuation byte
	text string // lower-cased word, identifier, decoded string (capped), @var name
}

type myLexer struct {
	st        myState
	q         byte // quote of myString
	esc       bool // myString: next byte escaped
	quoteSeen bool
	prev      byte
	inExec    bool // inside /*! ... */
	mAfter    bool // mySlashStar saw "M"
	star      bool // a "*" whose meaning the next byte decides
	delim     string
	dm        int // delimiter bytes matched

	word   []byte
	inWord bool
	buf    []byte // content of the quoted token being read (capped)
	at     int    // 1: after "@", 2: after "@@"

	// statement
	tokens    int
	first     string
	last      [3]myToken // the last tokens, newest last
	set       []myToken  // tokens of a SET statement
	setTooBig bool
	dumpDB    string // the one database a --databases header named
	startLine int

	forbidden map[string]bool
	safeVars  map[string]string // @var -> the system variable it saved
}

var (
	myDelimiterLine = regexp.MustCompile(`(?i)^delimiter[ \t]+([;/$|]{1,4})[ \t]*\r?\n?$`)
	mySandboxLine   = regexp.MustCompile(`^/\*M!999999\\- enable the sandbox mode \*/[ \t]*\r?\n?$`)
	myCreateDBLine  = regexp.MustCompile("^CREATE DATABASE /\\*!32312 IF NOT EXISTS\\*/ `((?:[^`]|``)+)`(?: /\\*!40100 [A-Za-z0-9_ =]*\\*/)? ?;\\r?\\n?$")
	myUseLine       = regexp.MustCompile("^USE `((?:[^`]|``)+)`;\\r?\\n?$")
)

func (l *myLexer) line(b []byte, lineNo int) ([]byte, bool, error) {
	if l.st != myNormal || l.inExec || l.inWord || l.tokens != 0 {
		return nil, false, nil
	}
	if m := myDelimiterLine.FindSubmatch(b); m != nil {
		l.delim, l.dm = string(m[1]), 0
		return b, true, nil
	}
	if mySandboxLine.Match(b) {
		// mariadb-dump's first line: the client's sandbox mode, which
		// the restorer turns on itself.
		return []byte("\n"), true, nil
	}
	for _, re := range []*regexp.Regexp{myCreateDBLine, myUseLine} {
		if m := re.FindSubmatch(b); m != nil {
			name := strings.ReplaceAll(string(m[1]), "``", "`")
			if l.dumpDB != "" && l.dumpDB != name {
				return nil, false, &Error{Line: lineNo, Construct: shorten(b), Reason: "a second database in one script (dump one database per component)"}
			}
			l.dumpDB = name
			return []byte("\n"), true, nil
		}
	}
	return nil, false, nil
}

func (l *myLexer) refuse(lineNo int, b []byte, i int, reason string) error {
	if b == nil {
		return &Error{Line: lineNo, Construct: l.first, Reason: reason}
	}
	return &Error{Line: lineNo, Construct: shorten(b[max(i, 0):]), Reason: reason}
}

func (l *myLexer) lex(b []byte, lineNo int, start bool) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch l.st {
		case myLineCmt:
			if c == '\n' {
				l.st, l.prev = myNormal, 0
			}
		case myDashDash:
			switch {
			case isSpace(c):
				l.st = myLineCmt
				if c == '\n' {
					l.st, l.prev = myNormal, 0
				}
			case c < 0x20:
				return l.refuse(lineNo, b, i-2, `"--" before a control character (a comment to the server, not to the client)`)
			default:
				l.st, l.prev = myNormal, 0
				i--
			}
		case myBlockCmt:
			if l.prev == '*' && c == '/' {
				l.st, l.prev = myNormal, 0
				continue
			}
			l.prev = c
		case mySlashStar:
			switch {
			case c == '!':
				if l.inExec {
					return l.refuse(lineNo, b, i-2, "a comment inside an executable comment")
				}
				l.st, l.inExec = myVersion, true
			case c == 'M' && !l.mAfter:
				l.mAfter = true
			case l.mAfter:
				// "/*M" not followed by "!": an ordinary comment.
				l.st, l.prev = myBlockCmt, c
			default:
				if l.inExec {
					return l.refuse(lineNo, b, i-2, "a comment inside an executable comment")
				}
				l.st, l.prev = myBlockCmt, 0
				i--
			}
		case myVersion:
			if !isDigit(c) {
				l.st, l.prev = myNormal, 0
				i--
			}
		case myString:
			if !l.esc && !l.quoteSeen {
				// Fast path: the run up to the next backslash or quote.
				j := i
				for j < len(b) && b[j] != '\\' && b[j] != l.q {
					j++
				}
				if j > i {
					if room := myStrCap - len(l.buf); room > 0 {
						l.buf = append(l.buf, b[i:min(j, i+room)]...)
					}
					i = j - 1
					continue
				}
			}
			switch {
			case l.esc:
				l.esc = false
				l.add(c)
			case l.quoteSeen:
				l.quoteSeen = false
				if c == l.q {
					l.add(c)
					continue
				}
				l.st, l.prev = myNormal, 0
				if err := l.token(myToken{kind: 's', text: string(l.buf)}, lineNo, b, i); err != nil {
					return err
				}
				i--
			case c == '\\':
				l.esc = true
			case c == l.q:
				l.quoteSeen = true
			default:
				l.add(c)
			}
		case myBacktick:
			if l.quoteSeen {
				l.quoteSeen = false
				if c == '`' {
					l.add(c)
					continue
				}
				l.st, l.prev = myNormal, 0
				if err := l.token(myToken{kind: 'q', text: strings.ToLower(string(l.buf))}, lineNo, b, i); err != nil {
					return err
				}
				i--
				continue
			}
			if c == '`' {
				l.quoteSeen = true
			} else {
				l.add(c)
			}
		case myNormal:
			if err := l.normal(b, i, lineNo); err != nil {
				return err
			}
		}
	}
	return nil
}

// myStrCap caps what is kept of a string or quoted identifier's text.
const myStrCap = 1024

func (l *myLexer) add(c byte) {
	if len(l.buf) < myStrCap {
		l.buf = append(l.buf, c)
	}
}

func (l *myLexer) normal(b []byte, i, lineNo int) error {
	c := b[i]
	if l.inWord {
		if isIdentCont(c) || c == '$' {
			if len(l.word) < 64 {
				l.word = append(l.word, c)
			}
			return nil
		}
		l.inWord = false
		if err := l.endWord(lineNo, b, i); err != nil {
			return err
		}
	}
	// The statement delimiter, outside strings and comments.
	if c == l.delim[l.dm] {
		l.dm++
		if l.dm == len(l.delim) {
			l.dm = 0
			l.prev = 0
			return l.endStatement(lineNo, b, i)
		}
		if len(l.delim) > 1 {
			return nil
		}
	} else if l.dm > 0 {
		l.dm = 0
		if c == l.delim[0] {
			l.dm = 1
			return nil
		}
	}
	if l.star {
		// "*": a token, or with "/" the end of an executable comment.
		l.star = false
		if c == '/' && l.inExec {
			l.inExec, l.prev = false, 0
			return nil
		}
		if err := l.token(myToken{kind: '*'}, lineNo, b, i); err != nil {
			return err
		}
	}
	prev := l.prev
	l.prev = c
	if l.at > 0 && c != '@' && !isIdentStart(c) && !isDigit(c) && c != '\'' && c != '"' && c != '`' {
		l.at = 0
	}
	switch {
	case isSpace(c):
	case c == '\\':
		return l.refuse(lineNo, b, i, "mysql client command")
	case c == '#':
		l.st = myLineCmt
	case prev == '-' && c == '-':
		l.st = myDashDash
	case prev == '/' && c == '*':
		l.st, l.mAfter = mySlashStar, false
	case c == '*':
		l.star = true
	case c == '-' || c == '/':
		// decided by the next byte
	case c == '\'' || c == '"':
		l.st, l.q, l.esc, l.quoteSeen, l.buf = myString, c, false, false, l.buf[:0]
	case c == '`':
		l.st, l.quoteSeen, l.buf = myBacktick, false, l.buf[:0]
	case c == '@':
		if l.at == 1 {
			l.at = 0
			err := l.token(myToken{kind: 'S'}, lineNo, b, i)
			l.at = 2
			return err
		}
		l.at = 1
	case isIdentCont(c) || c == '$':
		l.inWord = true
		l.word = append(l.word[:0], c)
	case c == ':' || c == '=' || c == ',' || c == '.' || c == '(' || c == ')':
		return l.token(myToken{kind: c}, lineNo, b, i)
	default:
		return l.token(myToken{kind: '?'}, lineNo, b, i)
	}
	return nil
}

func (l *myLexer) endWord(lineNo int, b []byte, i int) error {
	if isNumber(l.word) {
		return l.token(myToken{kind: 'n'}, lineNo, b, i-len(l.word))
	}
	return l.token(myToken{kind: 'w', text: strings.ToLower(string(l.word))}, lineNo, b, i-len(l.word))
}

// Words refused anywhere in a statement (bare, in any case).
var myDenyWords = map[string]string{
	"outfile": "writing server files", "dumpfile": "writing server files", "load_file": "reading server files",
	"infile": "reading files (LOAD DATA)", "soname": "loading server plugins", "prepare": "dynamic SQL",
	"execute": "dynamic SQL", "deallocate": "dynamic SQL", "global": "global settings", "persist": "global settings",
	"persist_only": "global settings", "grant": "privileges", "revoke": "privileges", "shutdown": "server control",
	"kill": "server control", "install": "server plugins", "uninstall": "server plugins", "binlog": "replication",
	"flush": "server control", "purge": "replication", "master": "replication", "replica": "replication",
	"slave": "replication", "sql_log_bin": "replication",
}

// Statements a dump is made of.
var myFirstWords = []string{"set", "drop", "create", "alter", "insert", "replace", "lock", "unlock", "start", "begin",
	"commit", "rollback", "update", "delete", "truncate", "rename", "savepoint", "release"}

// Pairs of words refused anywhere: objects outside the database.
var myDenyPairs = map[string][]string{
	"create": {"database", "schema", "user", "role", "server", "tablespace", "logfile"},
	"drop":   {"database", "schema", "user", "role", "server", "tablespace", "logfile"},
	"alter":  {"database", "schema", "user", "role", "server", "tablespace", "logfile", "instance"},
	"rename": {"user"},
	"load":   {"data", "xml", "index"},
	"change": {"master", "replication"},
	"reset":  {"master", "slave", "replica", "query", "persist"},
	"lock":   {"instance"},
}

func (l *myLexer) token(t myToken, lineNo int, b []byte, i int) error {
	// "@name" and "@'name'": user variables; "@@name": system variables.
	if l.at == 1 && (t.kind == 'w' || t.kind == 's' || t.kind == 'q') {
		t = myToken{kind: 'v', text: strings.ToLower(t.text)}
	}
	l.at = 0
	if l.tokens == 0 {
		l.startLine = lineNo
		if t.kind != 'w' {
			return l.refuse(lineNo, b, i, "a statement that is not one a dump holds")
		}
		l.first = t.text
		switch t.text {
		case "use":
			return l.refuse(lineNo, b, i, "USE (switches to another database)")
		case "connect", "source", "system", "tee", "pager", "charset", "sandbox":
			return l.refuse(lineNo, b, i, "mysql client command")
		}
		if !slices.Contains(myFirstWords, t.text) {
			return l.refuse(lineNo, b, i, "a statement that is not one a dump holds")
		}
	}
	l.tokens++
	if t.kind == 'w' {
		if why, ok := myDenyWords[t.text]; ok {
			return l.refuse(lineNo, b, i, strings.ToUpper(t.text)+" ("+why+")")
		}
		if p := l.last[2]; p.kind == 'w' && slices.Contains(myDenyPairs[p.text], t.text) {
			return l.refuse(lineNo, b, i, strings.ToUpper(p.text+" "+t.text)+" (outside the database being restored)")
		}
		if l.tokens == 2 && l.first == "set" {
			switch t.text {
			case "password", "role", "statement", "default", "transaction":
				if t.text != "transaction" {
					return l.refuse(lineNo, b, i, "SET "+strings.ToUpper(t.text))
				}
			}
		}
	}
	// Qualified names: a.b where a names another database, or a.b.c.
	if t.kind == 'w' || t.kind == 'q' || t.kind == '*' {
		if l.last[2].kind == '.' && (l.last[1].kind == 'w' || l.last[1].kind == 'q') && l.last[0].kind != 'S' {
			qual := l.last[1]
			if l.last[0].kind == '.' {
				return l.refuse(lineNo, b, i, "a name qualified with a database (db.table.column)")
			}
			if (qual.kind == 'q' || !allDigits(qual.text)) && l.forbidden[qual.text] {
				return l.refuse(lineNo, b, i, "a name qualified with another database ("+qual.text+")")
			}
		}
	}
	if t.kind == 'v' && l.first != "set" {
		// A user variable used elsewhere (SELECT @v := ..., a trigger
		// body) may hold anything by the time a SET reads it.
		delete(l.safeVars, t.text)
	}
	l.last[0], l.last[1], l.last[2] = l.last[1], l.last[2], t
	if l.first == "set" {
		if len(l.set) < 512 {
			l.set = append(l.set, t)
		} else {
			l.setTooBig = true
		}
	}
	return nil
}

// isNumber says whether a word is a decimal or 0x hex number (never a name).
func isNumber(w []byte) bool {
	digits := w
	hex := len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X')
	if hex {
		digits = w[2:]
	}
	for _, c := range digits {
		hexDigit := hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
		if !isDigit(c) && !hexDigit {
			return false
		}
	}
	return len(digits) > 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func (l *myLexer) endStatement(lineNo int, b []byte, i int) error {
	if l.inWord {
		l.inWord = false
		if err := l.endWord(lineNo, b, i); err != nil {
			return err
		}
	}
	var err error
	if l.first == "set" {
		err = l.checkSet()
	}
	l.tokens, l.first, l.last, l.set, l.setTooBig, l.at = 0, "", [3]myToken{}, l.set[:0], false, 0
	return err
}

func (l *myLexer) end(lineNo int) error {
	inside := map[myState]string{myString: "a string", myBacktick: "a quoted identifier", myBlockCmt: "a comment", mySlashStar: "a comment", myVersion: "an executable comment"}
	if what, ok := inside[l.st]; ok && !l.quoteSeen || l.inExec {
		if !ok {
			what = "an executable comment"
		}
		return &Error{Line: lineNo, Reason: "the script ends inside " + what + ": it is truncated (dump it again)"}
	}
	if l.st == myNormal && l.inWord {
		l.inWord = false
		if err := l.endWord(lineNo, nil, 0); err != nil {
			return err
		}
	}
	if l.first == "set" {
		return l.checkSet()
	}
	return nil
}

// sql_mode parts that change how a script is lexed (directly or through a
// combination mode).
var myBadModes = []string{"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"}

// Client character sets in which no multibyte character holds the byte of
// a backslash or a quote.
var mySafeCharsets = []string{"utf8", "utf8mb3", "utf8mb4", "latin1", "latin2", "latin5", "latin7", "ascii", "binary",
	"cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852", "cp866", "koi8r", "koi8u", "greek", "hebrew", "armscii8",
	"geostd8", "keybcs2", "macce", "macroman", "swe7", "dec8", "hp8", "tis620", "euckr", "ujis", "eucjpms", "default"}

// checkSet checks the assignments of a SET statement that change how the
// rest of the script is lexed: sql_mode and the client character set.
func (l *myLexer) checkSet() error {
	if l.setTooBig {
		return &Error{Line: l.startLine, Construct: "SET ...", Reason: "a SET statement too long to check"}
	}
	toks := l.set[1:]
	refuse := func(why string) error {
		return &Error{Line: l.startLine, Construct: "SET " + describe(toks), Reason: why}
	}
	for _, a := range splitTokens(toks, ',') {
		// SET NAMES x / SET CHARACTER SET x / SET CHARSET x
		var cs []myToken
		switch {
		case len(a) > 0 && a[0].kind == 'w' && (a[0].text == "names" || a[0].text == "charset"):
			cs = a[1:]
		case len(a) > 1 && a[0].kind == 'w' && a[0].text == "character" && a[1].text == "set":
			cs = a[2:]
		}
		if cs != nil {
			if len(cs) == 0 || !slices.Contains(mySafeCharsets, strings.ToLower(cs[0].text)) {
				return refuse("a client character set other than the ones in which a multibyte character cannot hide a backslash")
			}
			continue
		}
		eq := slices.IndexFunc(a, func(t myToken) bool { return t.kind == '=' })
		if eq < 0 {
			continue
		}
		lhs, rhs := a[:eq], a[eq+1:]
		if len(lhs) > 0 && lhs[len(lhs)-1].kind == ':' {
			lhs = lhs[:len(lhs)-1]
		}
		if len(lhs) == 0 {
			return refuse("an assignment without a name")
		}
		name := lhs[len(lhs)-1]
		if name.kind == 'v' && len(lhs) == 1 {
			// @var = @@sql_mode (or @@character_set_client) saves it for
			// later; anything else makes @var unfit to set them from.
			delete(l.safeVars, name.text)
			if len(rhs) >= 2 && rhs[0].kind == 'S' && rhs[len(rhs)-1].kind == 'w' && (len(rhs) == 2 || len(rhs) == 4 && rhs[1].text == "session" && rhs[2].kind == '.') {
				l.safeVars[name.text] = rhs[len(rhs)-1].text
			}
			continue
		}
		switch name.text {
		case "sql_mode", "character_set_client":
		default:
			continue
		}
		if len(rhs) == 1 && rhs[0].kind == 'v' {
			if l.safeVars[rhs[0].text] == name.text {
				continue
			}
			return refuse(name.text + " set from a variable that does not hold its earlier value")
		}
		charsetWord := len(rhs) == 1 && rhs[0].kind == 'w' && name.text == "character_set_client"
		if len(rhs) != 1 || rhs[0].kind != 's' && !charsetWord {
			return refuse(name.text + " set to anything but a literal")
		}
		if name.text == "character_set_client" {
			if !slices.Contains(mySafeCharsets, strings.ToLower(rhs[0].text)) {
				return refuse("a client character set other than the ones in which a multibyte character cannot hide a backslash")
			}
			continue
		}
		// The decoded text is capped, and the server decodes \t, \n, \0
		// to bytes this lexer reads as letters: refuse a value it cannot
		// have read whole, and a bad mode anywhere inside a part.
		if len(rhs[0].text) >= myStrCap {
			return refuse(name.text + " set to a value too long to check")
		}
		for _, m := range strings.Split(strings.ToUpper(rhs[0].text), ",") {
			for _, bad := range myBadModes {
				if strings.Contains(m, bad) {
					return refuse("sql_mode " + strings.TrimSpace(m) + " (changes how the script is read)")
				}
			}
		}
	}
	return nil
}

func splitTokens(toks []myToken, sep byte) [][]myToken {
	var out [][]myToken
	depth, startAt := 0, 0
	for i, t := range toks {
		switch t.kind {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, toks[startAt:i])
				startAt = i + 1
			}
		}
	}
	return append(out, toks[startAt:])
}

func describe(toks []myToken) string {
	var sb strings.Builder
	for _, t := range toks {
		switch t.kind {
		case 'w', 'q':
			sb.WriteString(t.text + " ")
		case 's':
			sb.WriteString("'" + t.text + "' ")
		case 'v':
			sb.WriteString("@" + t.text + " ")
		case 'S':
			sb.WriteString("@@")
		default:
			sb.WriteString(string(t.kind) + " ")
		}
		if sb.Len() > 60 {
			break
		}
	}
	return strings.TrimSpace(sb.String())
}
