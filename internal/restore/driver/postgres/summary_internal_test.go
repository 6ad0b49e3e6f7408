package postgres

import (
	"strings"
	"testing"
)

const dumpSQL = `--
-- PostgreSQL database dump
--

\restrict abc123

-- Dumped from database version 17.2
-- Dumped by pg_dump version 17.2

CREATE TABLE public.products (
    id integer NOT NULL,
    price numeric
);

--
-- Data for Name: products; Type: TABLE DATA; Schema: public; Owner: u
--

COPY public.products (id, price) FROM stdin;
1	9.99
2	19.99
\.


--
-- Data for Name: empty; Type: TABLE DATA; Schema: public; Owner: u
--

COPY public."Empty Things" (id) FROM stdin;
\.


SELECT pg_catalog.setval('public.products_id_seq', 2, true);

CREATE INDEX products_price ON public.products USING btree (price);

\unrestrict abc123
`

// The summary counts each table's COPY rows and bytes, and keeps the rest
// as the schema without what differs between two dumps of the same schema.
func TestSummarizer_TablesAndNormalisedSchema(t *testing.T) {
	s := newSummarizer()
	// Written in odd pieces, as a pipe delivers it.
	for i := 0; i < len(dumpSQL); i += 7 {
		_, _ = s.Write([]byte(dumpSQL[i:min(i+7, len(dumpSQL))]))
	}
	sum, err := s.summary()
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Tables) != 2 || sum.Tables[0].Name != "public.products" || sum.Tables[0].Rows != 2 || sum.Tables[0].Bytes != int64(len("1\t9.99\n2\t19.99\n")) ||
		sum.Tables[1].Name != `public."Empty Things"` || sum.Tables[1].Rows != 0 {
		t.Fatalf("tables = %+v", sum.Tables)
	}
	for _, gone := range []string{"restrict", "Dumped", "Data for Name", "COPY", "setval", "9.99"} {
		if strings.Contains(sum.Schema, gone) {
			t.Errorf("schema holds %q:\n%s", gone, sum.Schema)
		}
	}
	for _, kept := range []string{"CREATE TABLE public.products", "CREATE INDEX products_price"} {
		if !strings.Contains(sum.Schema, kept) {
			t.Errorf("schema lacks %q:\n%s", kept, sum.Schema)
		}
	}
	other := newSummarizer()
	_, _ = other.Write([]byte(strings.NewReplacer("abc123", "zzz", "17.2", "17.3", "19.99", "29.99").Replace(dumpSQL)))
	o, _ := other.summary()
	if o.SchemaDigest != sum.SchemaDigest || o.Tables[0].Digest == sum.Tables[0].Digest || o.Tables[1].Digest != sum.Tables[1].Digest {
		t.Errorf("a changed price must change that table's digest only: %+v vs %+v", o, sum)
	}
	bad := newSummarizer()
	_, _ = bad.Write([]byte("COPY public.t (a) FROM stdin;\n1\n"))
	if _, err := bad.summary(); err == nil || !strings.Contains(err.Error(), "public.t") {
		t.Errorf("unterminated COPY: %v", err)
	}
}

// BenchmarkSummarizer is the cost a capture adds per byte of COPY data
// (pg_restore's own pass over the archive comes on top).
func BenchmarkSummarizer(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("COPY public.pgbench_accounts (aid, bid, abalance, filler) FROM stdin;\n")
	for i := range 100_000 {
		sb.WriteString(strings.Repeat("1", 6) + "\t1\t" + strings.Repeat("0", i%5) + "\t" + strings.Repeat(" ", 84) + "\n")
	}
	sb.WriteString("\\.\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s := newSummarizer()
		for i := 0; i < len(data); i += 64 << 10 {
			_, _ = s.Write(data[i:min(i+64<<10, len(data))])
		}
		if _, err := s.summary(); err != nil {
			b.Fatal(err)
		}
	}
}
