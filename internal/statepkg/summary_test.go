package statepkg_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// A summary rides in the component's meta as JSON: the manifest encodes
// and decodes (the fast decoder included) to the same summary, schema text
// with quotes, tabs and newlines intact.
func TestSummary_RoundTripsThroughTheManifest(t *testing.T) {
	want := statepkg.Summary{Schema: "CREATE TABLE \"a\" (\n\tb text DEFAULT 'x\\y'\n);\n", SchemaDigest: statepkg.DigestBytes([]byte("s")),
		Tables: []statepkg.TableSummary{{Name: `public."Ünïcode"`, Rows: 3, Bytes: 42, Digest: statepkg.DigestBytes([]byte("t"))}},
		Keys:   []statepkg.KeyCount{{DB: 2, Type: "hash", Count: 7}}}
	meta, err := statepkg.SetSummary(map[string]string{"serverVersion": "17"}, want)
	if err != nil {
		t.Fatal(err)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, CreatedAt: time.Unix(1, 0), Components: []statepkg.Component{
		{Name: "db", Kind: statepkg.KindPostgres, Digest: statepkg.DigestBytes(nil), Meta: meta}}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := statepkg.DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	s, ok, err := statepkg.ComponentSummary(&got.Components[0])
	want.Version = statepkg.SummaryVersion
	if err != nil || !ok || !reflect.DeepEqual(s, want) {
		t.Fatalf("summary = %+v, %v, %v\nwant %+v", s, ok, err, want)
	}
	if _, ok, err := statepkg.ComponentSummary(&statepkg.Component{Name: "old"}); ok || err != nil {
		t.Errorf("a component without a summary: %v %v", ok, err)
	}
}
