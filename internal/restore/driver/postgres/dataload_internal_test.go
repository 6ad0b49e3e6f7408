package postgres

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"
)

// The rows of a COPY block come out whole and exact, and the script after
// its `\.` line is left to read, whatever the buffer size and however
// the pipe hands the bytes over.
func TestAppendRows_SplitsAtLinesAndStopsAtEndOfData(t *testing.T) {
	var rows strings.Builder
	for i := range 500 {
		fmt.Fprintf(&rows, "%d\t%s\t\\N\tback\\\\slash \\\\. new\\nline\n", i, strings.Repeat("x", i%97))
	}
	rows.WriteString("\\\\.\n") // a value that is a backslash and a dot
	rows.WriteString(strings.Repeat("y", 300) + "\n")
	want := rows.String()
	script := want + "\\.\n\nSELECT 1;\n"
	for _, size := range []int{16, 17, 64, 4096} {
		for _, slow := range []bool{false, true} {
			var src = bytes.NewReader([]byte(script))
			r := bufio.NewReaderSize(src, size)
			if slow {
				r = bufio.NewReaderSize(iotest.OneByteReader(src), size)
			}
			var got []byte
			for {
				var end bool
				var err error
				got, end, err = appendRows(r, got)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if end {
					break
				}
			}
			if string(got) != want {
				t.Errorf("size %d slow %v: rows differ (%d bytes, want %d)", size, slow, len(got), len(want))
			}
			rest, _ := r.ReadString(0)
			if rest != "\nSELECT 1;\n" {
				t.Errorf("size %d slow %v: left %q after the block", size, slow, rest)
			}
		}
	}
	// Cut short: the block never ends.
	r := bufio.NewReaderSize(strings.NewReader(want[:len(want)-5]), 16)
	var err error
	for err == nil {
		var end bool
		_, end, err = appendRows(r, nil)
		if end {
			t.Fatal("a truncated block ended")
		}
	}
}
