package statediff_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func digest(s string) string { return statepkg.DigestBytes([]byte(s)) }

func pg(t testing.TB, content string, s *statepkg.Summary) statepkg.Component {
	t.Helper()
	c := statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom", Digest: digest(content), Meta: map[string]string{"serverVersion": "17.2"}}
	if s != nil {
		var err error
		if c.Meta, err = statepkg.SetSummary(c.Meta, *s); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func manifest(cs ...statepkg.Component) *statepkg.Manifest {
	return &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, Components: cs}
}

const schemaV1 = "CREATE TABLE public.products (\n    id integer,\n    price numeric\n);\n"

func TestDiff_ChangedTableOnlyWithRowsSizesAndSchemaDiff(t *testing.T) {
	a := manifest(pg(t, "v1", &statepkg.Summary{Schema: schemaV1, SchemaDigest: digest(schemaV1), Tables: []statepkg.TableSummary{
		{Name: "public.products", Rows: 12, Bytes: 400, Digest: digest("p1")},
		{Name: "public.orders", Rows: 3, Bytes: 90, Digest: digest("o1")},
		{Name: "public.old", Rows: 1, Bytes: 9, Digest: digest("x")},
	}}))
	schemaV2 := strings.Replace(schemaV1, "price numeric", "price numeric,\n    currency text", 1)
	b := manifest(pg(t, "v2", &statepkg.Summary{Schema: schemaV2, SchemaDigest: digest(schemaV2), Tables: []statepkg.TableSummary{
		{Name: "public.products", Rows: 13, Bytes: 430, Digest: digest("p2")},
		{Name: "public.orders", Rows: 3, Bytes: 90, Digest: digest("o1")},
		{Name: "public.reviews", Rows: 5, Bytes: 50, Digest: digest("r")},
	}}))
	r, err := statediff.Diff(statediff.Side{Ref: "shop/seed:v1"}, statediff.Side{Ref: "shop/seed:v2"}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Components[0]
	if c.Change != statediff.Changed || len(r.Components) != 1 {
		t.Fatalf("components = %+v", r.Components)
	}
	want := []statediff.Table{
		{Name: "public.old", Change: statediff.Removed, RowsBefore: 1, BytesBefore: 9},
		{Name: "public.products", Change: statediff.Changed, RowsBefore: 12, RowsAfter: 13, BytesBefore: 400, BytesAfter: 430},
		{Name: "public.reviews", Change: statediff.Added, RowsAfter: 5, BytesAfter: 50},
	}
	if fmt.Sprint(c.Tables) != fmt.Sprint(want) {
		t.Errorf("tables = %+v\nwant %+v", c.Tables, want)
	}
	if !c.SchemaChanged || !strings.Contains(c.SchemaDiff, "-    price numeric\n+    price numeric,\n+    currency text\n") || !strings.HasPrefix(c.SchemaDiff, "--- from/db.schema.sql\n+++ to/db.schema.sql\n") {
		t.Errorf("schema diff:\n%s", c.SchemaDiff)
	}
	if len(c.Meta) != 0 {
		t.Errorf("meta = %+v, want none (the summary is not metadata)", c.Meta)
	}
}

func TestDiff_ComponentsAddedRemovedUnchangedAndVolumeFiles(t *testing.T) {
	ts := time.Unix(0, 0)
	vol := func(content string, files ...statepkg.FileEntry) statepkg.Component {
		return statepkg.Component{Name: "uploads", Kind: statepkg.KindVolume, Format: "tar", Digest: digest(content), Files: files}
	}
	f := func(p string, size int64, sum string) statepkg.FileEntry {
		return statepkg.FileEntry{Path: p, Type: statepkg.FileRegular, Mode: 0o644, Size: size, MTime: ts, SHA256: sum}
	}
	redis := statepkg.Component{Name: "cache", Kind: statepkg.KindRedis, Digest: digest("c")}
	a := manifest(vol("a", f("img/a.png", 10, "aa"), f("img/b.png", 20, "bb"), f("gone.txt", 1, "gg")), redis,
		statepkg.Component{Name: "search", Kind: statepkg.KindOpenSearch, Digest: digest("s"), Size: 7})
	b := manifest(vol("b", f("img/a.png", 10, "aa"), f("img/b.png", 25, "b2"), f("new.txt", 3, "nn")), redis,
		statepkg.Component{Name: "cfg", Kind: statepkg.KindKubernetes, Digest: digest("k"), Size: 5})
	r, err := statediff.Diff(statediff.Side{}, statediff.Side{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]statediff.Change{}
	for _, c := range r.Components {
		got[c.Name] = c.Change
	}
	if fmt.Sprint(got) != "map[cache:unchanged cfg:added search:removed uploads:changed]" {
		t.Errorf("changes = %v", got)
	}
	wantFiles := []statediff.File{
		{Path: "gone.txt", Change: statediff.Removed, Type: "file", SizeBefore: 1},
		{Path: "img/b.png", Change: statediff.Changed, Type: "file", SizeBefore: 20, SizeAfter: 25},
		{Path: "new.txt", Change: statediff.Added, Type: "file", SizeAfter: 3},
	}
	if fmt.Sprint(r.Components[0].Files) != fmt.Sprint(wantFiles) {
		t.Errorf("files = %+v", r.Components[0].Files)
	}
	if !r.Changed() {
		t.Error("Changed() = false")
	}
	same, _ := statediff.Diff(statediff.Side{}, statediff.Side{}, a, a)
	if same.Changed() {
		t.Error("a version differs from itself")
	}
}

// A version captured before summaries is compared by digest and size, with
// a note, not an error.
func TestDiff_OldManifestWithoutSummarySaysSo(t *testing.T) {
	a := manifest(pg(t, "v1", nil))
	b := manifest(pg(t, "v2", &statepkg.Summary{Tables: []statepkg.TableSummary{{Name: "t", Rows: 1, Bytes: 2, Digest: digest("t")}}}))
	r, err := statediff.Diff(statediff.Side{}, statediff.Side{}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Components[0]
	if c.Change != statediff.Changed || len(c.Tables) != 0 || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "from: summary not recorded") {
		t.Errorf("component = %+v", c)
	}
	r, _ = statediff.Diff(statediff.Side{}, statediff.Side{}, a, manifest(pg(t, "v3", nil)))
	if n := r.Components[0].Notes; len(n) != 1 || !strings.HasPrefix(n[0], "summary not recorded") {
		t.Errorf("notes = %q", n)
	}
}

// A summary from a newer build, or a damaged one, is an error naming the
// component, not a wrong diff.
func TestDiff_UnreadableSummaryIsAnError(t *testing.T) {
	for name, raw := range map[string]string{"newer": `{"v":2}`, "damaged": `{"v":1,"tables":`} {
		c := pg(t, "v2", nil)
		c.Meta[statepkg.MetaSummary] = raw
		_, err := statediff.Diff(statediff.Side{}, statediff.Side{}, manifest(pg(t, "v1", &statepkg.Summary{})), manifest(c))
		if err == nil || !strings.Contains(err.Error(), `component "db"`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
