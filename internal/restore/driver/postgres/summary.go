package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os/exec"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// summarizer reads pg_dump's SQL (a plain dump, or pg_restore's rendering
// of an archive) and records per table the rows, bytes and digest of its
// COPY data, and the rest as the schema, for `helm state diff`.
type summarizer struct {
	driver.Lines // hands the dump to line, a line at a time
	tables       []statepkg.TableSummary
	cur          *statepkg.TableSummary
	h            hash.Hash
	schema       bytes.Buffer
	comment      []string // a "--" block held until we know it heads a data entry
	big          bool     // schema text past MaxSchemaText: keep the digest only
	sh           hash.Hash
}

func newSummarizer() *summarizer {
	s := &summarizer{sh: sha256.New()}
	s.Line = s.line
	return s
}

// line handles one line, newline included.
func (s *summarizer) line(l []byte) {
	if s.cur != nil {
		if string(l) == "\\.\n" {
			s.cur.Digest = statepkg.DigestPrefix + hex.EncodeToString(s.h.Sum(nil))
			s.tables = append(s.tables, *s.cur)
			s.cur = nil
			return
		}
		s.cur.Rows++
		s.cur.Bytes += int64(len(l))
		s.h.Write(l)
		return
	}
	text := strings.TrimRight(string(l), "\r\n")
	if strings.HasPrefix(text, "COPY ") && strings.HasSuffix(text, " FROM stdin;") {
		name := strings.TrimPrefix(text, "COPY ")
		if i := strings.Index(name, " ("); i >= 0 {
			name = name[:i]
		} else {
			name = strings.TrimSuffix(name, " FROM stdin;")
		}
		s.cur = &statepkg.TableSummary{Name: name}
		s.h = sha256.New()
		s.comment = nil
		return
	}
	if strings.HasPrefix(text, "--") {
		s.comment = append(s.comment, text)
		return
	}
	if len(s.comment) > 0 {
		block := s.comment
		s.comment = nil
		data := false
		for _, c := range block {
			data = data || strings.HasPrefix(c, "-- Data for Name:")
		}
		if !data {
			for _, c := range block {
				s.schemaLine(c)
			}
		}
	}
	switch {
	case strings.HasPrefix(text, `\restrict `), strings.HasPrefix(text, `\unrestrict `):
		// A random key per dump (pg_dump 17.6+), not the schema.
	case strings.HasPrefix(text, "SELECT pg_catalog.setval("):
		// Sequence positions move with the data.
	default:
		s.schemaLine(text)
	}
}

func (s *summarizer) schemaLine(text string) {
	if strings.HasPrefix(text, "-- Dumped from database version") || strings.HasPrefix(text, "-- Dumped by pg_dump version") {
		return
	}
	// Runs of blank lines (where data entries were) collapse to one.
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

// summary finishes reading; an unterminated COPY block is an error.
func (s *summarizer) summary() (statepkg.Summary, error) {
	s.Flush()
	if s.cur != nil {
		return statepkg.Summary{}, fmt.Errorf("the data of table %s ends without its terminator", s.cur.Name)
	}
	for _, c := range s.comment {
		s.schemaLine(c)
	}
	out := statepkg.Summary{Tables: s.tables, SchemaDigest: statepkg.DigestPrefix + hex.EncodeToString(s.sh.Sum(nil))}
	if !s.big {
		out.Schema = s.schema.String()
	}
	return out, nil
}

// summarizeArchive renders a custom-format archive as SQL with pg_restore
// and summarises it. Reading the archive again costs a pass over the temp
// file (in the page cache after the dump), which buys a diff without chunks.
func summarizeArchive(ctx context.Context, path string, opts map[string]string) (statepkg.Summary, error) {
	bin, err := tool("pg_restore", opts)
	if err != nil {
		return statepkg.Summary{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "-f", "-", path)
	sum := newSummarizer()
	stderr := &driver.Tail{}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return statepkg.Summary{}, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return statepkg.Summary{}, fmt.Errorf("postgres capture: summary: %w", err)
	}
	_, cerr := io.Copy(sum, bufio.NewReaderSize(out, 1<<20))
	if err := driver.ToolError(ctx, "pg_restore", cmd.Wait(), stderr); err != nil {
		return statepkg.Summary{}, fmt.Errorf("postgres capture: summary of the archive: %w", err)
	}
	if cerr != nil {
		return statepkg.Summary{}, fmt.Errorf("postgres capture: summary of the archive: %w", cerr)
	}
	s, err := sum.summary()
	if err != nil {
		return statepkg.Summary{}, fmt.Errorf("postgres capture: summary of the archive: %w", err)
	}
	return s, nil
}
