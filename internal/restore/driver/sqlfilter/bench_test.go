package sqlfilter_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
)

func BenchmarkPostgres_CopyData(b *testing.B) {
	var s bytes.Buffer
	s.WriteString("COPY public.items (id, name, note) FROM stdin;\n")
	for i := 0; s.Len() < 32<<20; i++ {
		fmt.Fprintf(&s, "%d\titem-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\t{\"g\": %d}\n", i, i, i)
	}
	s.WriteString("\\.\n")
	b.SetBytes(int64(s.Len()))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, sqlfilter.Postgres(bytes.NewReader(s.Bytes()))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMySQL_ExtendedInserts(b *testing.B) {
	var s bytes.Buffer
	for s.Len() < 32<<20 {
		s.WriteString("INSERT INTO `items` VALUES ")
		for i := range 2000 {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, "(%d,'item-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxx O\\'Brien',12.50,0x00FF10)", i, i)
		}
		s.WriteString(";\n")
	}
	b.SetBytes(int64(s.Len()))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, sqlfilter.MySQL(bytes.NewReader(s.Bytes()), sqlfilter.MySQLOptions{})); err != nil {
			b.Fatal(err)
		}
	}
}
