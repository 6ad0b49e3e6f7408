package sqlfilter_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
)

// The committed corpus (testdata/fuzz/Fuzz*) holds every attack of the
// tables in sqlfilter_test.go; UNIKUBE_UPDATE_FUZZ_CORPUS=1 rewrites it.
func TestFuzzCorpus_HoldsEveryAttack(t *testing.T) {
	for name, attacks := range map[string]map[string]string{"FuzzPostgres": PostgresAttacks, "FuzzMySQL": MySQLAttacks} {
		dir := filepath.Join("testdata", "fuzz", name)
		keys := make([]string, 0, len(attacks))
		for k := range attacks {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(attacks[k]) + ")\n"
			sum := sha256.Sum256([]byte(k))
			file := filepath.Join(dir, "attack-"+hex.EncodeToString(sum[:6]))
			if os.Getenv("UNIKUBE_UPDATE_FUZZ_CORPUS") == "1" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(file); err != nil || string(got) != body {
				t.Errorf("%s: corpus entry for attack %q missing or stale (UNIKUBE_UPDATE_FUZZ_CORPUS=1 go test -run TestFuzzCorpus rewrites it)", file, k)
			}
		}
	}
}

// FuzzPostgres: the filter never panics, and whatever it passes on has
// no backslash outside strings, identifiers, dollar quotes, comments and
// COPY data, by a second, simpler reading (whole-text, index based).
func FuzzPostgres(f *testing.F) {
	for _, s := range PostgresAttacks {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		out, err := io.ReadAll(sqlfilter.Postgres(strings.NewReader(string(script))))
		if err != nil {
			if !sqlfilter.IsRefused(err) {
				t.Fatalf("error that is not a refusal: %v", err)
			}
			return
		}
		if where := pgCodeBackslash(string(out)); where >= 0 {
			t.Fatalf("passed a meta-command at byte %d: %q", where, out)
		}
	})
}

var dollarTag = regexp.MustCompile(`^\$([A-Za-z_\x80-\xff][A-Za-z_0-9\x80-\xff]*)?\$`)

var copyFromStdin = regexp.MustCompile(`(?is)^\s*copy\b.*\bfrom\s+stdin\b[^;]*$`)

// pgCodeBackslash returns the offset of the first backslash psql would read
// as a meta-command, or -1.
func pgCodeBackslash(s string) int {
	isWord := func(c byte) bool {
		return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	stmt := 0 // start of the current statement
	paren := 0
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "--"):
			j := strings.IndexByte(rest, '\n')
			if j < 0 {
				return -1
			}
			i += j + 1
		case strings.HasPrefix(rest, "/*"):
			depth, j := 1, 2
			for depth > 0 && j < len(rest) {
				switch {
				case strings.HasPrefix(rest[j:], "/*"):
					depth, j = depth+1, j+2
				case strings.HasPrefix(rest[j:], "*/"):
					depth, j = depth-1, j+2
				default:
					j++
				}
			}
			i += j
		case rest[0] == '\'':
			esc := i > 0 && (s[i-1] == 'e' || s[i-1] == 'E') && (i < 2 || !isWord(s[i-2]))
			j := 1
			for j < len(rest) {
				if esc && rest[j] == '\\' {
					j += 2
					continue
				}
				if rest[j] == '\'' {
					if j+1 < len(rest) && rest[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i += j + 1
		case rest[0] == '"':
			j := 1
			for j < len(rest) && (rest[j] != '"' || j+1 < len(rest) && rest[j+1] == '"') {
				if rest[j] == '"' {
					j++
				}
				j++
			}
			i += j + 1
		case rest[0] == '$' && (i == 0 || !isWord(s[i-1])):
			m := dollarTag.FindString(rest)
			if m == "" {
				i++
				continue
			}
			j := strings.Index(rest[len(m):], m)
			if j < 0 {
				return -1
			}
			i += len(m) + j + len(m)
		case rest[0] == '\\':
			return i
		case rest[0] == '(':
			paren++
			i++
		case rest[0] == ')':
			paren--
			i++
		case rest[0] == ';' && paren <= 0:
			isCopy := copyFromStdin.MatchString(s[stmt:i])
			i++
			stmt, paren = i, 0
			if isCopy {
				// data from the next line to a line "\."
				nl := strings.IndexByte(s[i:], '\n')
				if nl < 0 {
					return -1
				}
				i += nl + 1
				for i < len(s) {
					nl := strings.IndexByte(s[i:], '\n')
					line := s[i:]
					if nl >= 0 {
						line = s[i : i+nl]
					}
					if nl < 0 {
						return -1 // data to the end
					}
					i += nl + 1
					if strings.TrimSuffix(line, "\r") == `\.` {
						break
					}
				}
				stmt = i
			}
		default:
			i++
		}
	}
	return -1
}

// FuzzMySQL: the filter never panics, and whatever it passes on has no
// backslash and no client command word outside strings and comments, by a
// second, simpler reading.
func FuzzMySQL(f *testing.F) {
	for _, s := range MySQLAttacks {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		out, err := io.ReadAll(sqlfilter.MySQL(strings.NewReader(string(script)), sqlfilter.MySQLOptions{Databases: []string{"other"}}))
		if err != nil {
			if !sqlfilter.IsRefused(err) {
				t.Fatalf("error that is not a refusal: %v", err)
			}
			return
		}
		if where := myCodeCommand(string(out)); where != "" {
			t.Fatalf("passed %s: %q", where, out)
		}
	})
}

var delimiterLine = regexp.MustCompile(`(?i)^\s*delimiter[^\n]*\n?`)

var myCommandWord = regexp.MustCompile(`(?i)^\s*(use|connect|system|source|tee|pager|charset)\b`)

// myCodeCommand names the first client command or escape in s, or "".
func myCodeCommand(s string) string {
	stmtStart := true
	for i := 0; i < len(s); {
		rest := s[i:]
		if stmtStart {
			if m := myCommandWord.FindString(rest); m != "" {
				return fmt.Sprintf("client command %q at byte %d", m, i)
			}
			if m := delimiterLine.FindString(rest); m != "" {
				i += len(m)
				continue
			}
		}
		stmtStart = false
		switch {
		case rest[0] == '#', strings.HasPrefix(rest, "-- "), strings.HasPrefix(rest, "--\t"), strings.HasPrefix(rest, "--\n"), strings.HasPrefix(rest, "--\r"):
			j := strings.IndexByte(rest, '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case strings.HasPrefix(rest, "/*!"), strings.HasPrefix(rest, "/*M!"):
			i += 3
		case strings.HasPrefix(rest, "/*"):
			j := strings.Index(rest[2:], "*/")
			if j < 0 {
				return ""
			}
			i += j + 4
		case rest[0] == '\'' || rest[0] == '"' || rest[0] == '`':
			q, j := rest[0], 1
			for j < len(rest) {
				if rest[j] == '\\' && q != '`' {
					j += 2
					continue
				}
				if rest[j] == q {
					if j+1 < len(rest) && rest[j+1] == q {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i += j + 1
		case rest[0] == '\\':
			return fmt.Sprintf("backslash command at byte %d", i)
		case rest[0] == ';':
			stmtStart = true
			i++
		default:
			i++
		}
	}
	return ""
}
