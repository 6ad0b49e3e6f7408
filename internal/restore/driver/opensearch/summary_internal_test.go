package opensearch

import (
	"encoding/json"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestMappingDigest_SameMappingsInAnyKeyOrder: the digest a diff compares
// depends on the mappings, not on the order a server lists their keys in.
func TestMappingDigest_SameMappingsInAnyKeyOrder(t *testing.T) {
	a := map[string]json.RawMessage{"properties": json.RawMessage(`{"title":{"type":"text","analyzer":"folded"},"n":{"type":"long"}}`)}
	b := map[string]json.RawMessage{"properties": json.RawMessage(`{ "n": {"type": "long"}, "title": {"analyzer": "folded", "type": "text"} }`)}
	c := map[string]json.RawMessage{"properties": json.RawMessage(`{"title":{"type":"keyword"},"n":{"type":"long"}}`)}
	if da, db := mappingDigest(a), mappingDigest(b); da != db || len(da) != 16 {
		t.Errorf("digests %q and %q of the same mappings", da, db)
	}
	if mappingDigest(a) == mappingDigest(c) {
		t.Error("a changed field type kept the digest")
	}
	var s summary
	s.index(&indexHeader{Name: "books", Mappings: a})
	s.end(&endIndex{Name: "books", Docs: 6})
	s.index(&indexHeader{Name: "logs-2024.01", Mappings: c})
	s.end(&endIndex{Name: "logs-2024.01", Docs: 0})
	m := s.meta(6)
	docs := ParseIndexMeta(m[MetaIndexDocs])
	if m["indexes"] != "books,logs-2024.01" || m["documents"] != "6" || docs["books"] != "6" || docs["logs-2024.01"] != "0" ||
		ParseIndexMeta(m[MetaMappings])["books"] != mappingDigest(a) {
		t.Errorf("meta %v", m)
	}
}

// TestPlanSummary_DocumentsSizeAndIndexes: the plan says what an apply
// loads, naming the first indexes.
func TestPlanSummary_DocumentsSizeAndIndexes(t *testing.T) {
	c := statepkg.Component{Size: 3 << 20, Meta: map[string]string{"documents": "1200"}}
	if got := planSummary(c, []string{"books"}); got != "1200 documents, 3.0 MiB, in 1 index: books" {
		t.Errorf("one index: %q", got)
	}
	many := []string{"a", "b", "c", "d", "e", "f", "g"}
	if got := planSummary(c, many); got != "1200 documents, 3.0 MiB, in 7 indexes: a, b, c, d, e, and 2 more" {
		t.Errorf("seven indexes: %q", got)
	}
}

// TestNextPageSize_BigPagesOfSmallDocuments: a capture asks for pages of
// about 8 MiB, within the servers' result window.
func TestNextPageSize_BigPagesOfSmallDocuments(t *testing.T) {
	page := func(n, size int) []hit {
		hs := make([]hit, n)
		for i := range hs {
			hs[i] = hit{ID: "id", Source: make(json.RawMessage, size)}
		}
		return hs
	}
	for _, c := range []struct {
		hits []hit
		want int
	}{
		{page(1000, 50), maxPage},
		{page(1000, 4000), 2078},
		{page(10, 1<<20), minPage},
		{nil, pageSize},
	} {
		if got := nextPageSize(c.hits); got != c.want {
			t.Errorf("after %d documents: next page %d, want %d", len(c.hits), got, c.want)
		}
	}
}
