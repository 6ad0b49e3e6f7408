package mysql

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"regexp"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// summarizer reads mysqldump's output (after the restore filter) and
// records per table the rows, bytes and digest of its INSERT statements, and
// the rest as the schema, for `helm state diff`. mysqldump writes each
// statement on one line, escaping newlines inside values.
type summarizer struct {
	driver.Lines // hands the dump to line, a line at a time
	tables       []statepkg.TableSummary
	index        map[string]int
	hashes       []hash.Hash
	schema       bytes.Buffer
	big          bool
	sh           hash.Hash
	// in is the table whose INSERT continues on the next line (MariaDB's
	// dump writes a row a line), -1 when none.
	in int
}

func newSummarizer() *summarizer {
	s := &summarizer{index: map[string]int{}, sh: sha256.New(), in: -1}
	s.Line = s.line
	return s
}

func (s *summarizer) table(name string) int {
	i, ok := s.index[name]
	if !ok {
		i = len(s.tables)
		s.index[name] = i
		s.tables = append(s.tables, statepkg.TableSummary{Name: name})
		s.hashes = append(s.hashes, sha256.New())
	}
	return i
}

// backquoted returns the `name` at the start of b (without the quotes).
func backquoted(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '`' {
		return "", false
	}
	j := bytes.IndexByte(b[1:], '`')
	if j < 0 {
		return "", false
	}
	return string(b[1 : 1+j]), true
}

var (
	autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)
	// Lines that differ between two dumps of the same schema.
	volatile = []string{"-- MySQL dump", "-- MariaDB dump", "-- Host:", "-- Server version", "-- Dump completed",
		"-- Dumping data for table", "LOCK TABLES ", "UNLOCK TABLES", "/*!40000 ALTER TABLE ", "/*M!999999"}
)

func (s *summarizer) line(l []byte) {
	i, rows := s.in, l
	if i < 0 {
		if rest, ok := bytes.CutPrefix(l, []byte("INSERT INTO ")); ok {
			if name, ok := backquoted(rest); ok {
				i, rows = s.table(name), rest[len(name)+2:]
			}
		}
	}
	if i >= 0 {
		s.tables[i].Rows += tuples(rows)
		s.tables[i].Bytes += int64(len(l))
		s.hashes[i].Write(l)
		s.in = -1
		if !bytes.HasSuffix(bytes.TrimRight(l, "\r\n"), []byte(";")) {
			s.in = i
		}
		return
	}
	text := strings.TrimRight(string(l), "\r\n")
	if rest, ok := strings.CutPrefix(text, "CREATE TABLE "); ok {
		if name, ok := backquoted([]byte(rest)); ok {
			s.table(name)
		}
		text = autoIncrement.ReplaceAllString(text, "")
	}
	if strings.HasPrefix(text, ") ENGINE=") {
		text = autoIncrement.ReplaceAllString(text, "")
	}
	for _, v := range volatile {
		if strings.HasPrefix(text, v) {
			return
		}
	}
	if text == "" && bytes.HasSuffix(s.schema.Bytes(), []byte("\n\n")) {
		return
	}
	s.sh.Write([]byte(text + "\n"))
	if s.big {
		return
	}
	if s.schema.Len()+len(text)+1 > statepkg.MaxSchemaText {
		s.big = true
		s.schema.Reset()
		return
	}
	s.schema.WriteString(text)
	s.schema.WriteByte('\n')
}

// tuples counts the top-level parenthesised rows of " VALUES (...),(...);",
// skipping parentheses inside quoted strings.
func tuples(b []byte) int64 {
	var n int64
	depth := 0
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			if depth == 0 {
				n++
			}
			depth++
		case c == ')':
			depth--
		}
	}
	return n
}

func (s *summarizer) summary() statepkg.Summary {
	s.Flush()
	for i := range s.tables {
		s.tables[i].Digest = statepkg.DigestPrefix + hex.EncodeToString(s.hashes[i].Sum(nil))
	}
	out := statepkg.Summary{Tables: s.tables, SchemaDigest: statepkg.DigestPrefix + hex.EncodeToString(s.sh.Sum(nil))}
	if !s.big {
		out.Schema = s.schema.String()
	}
	return out
}
