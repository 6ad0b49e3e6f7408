package commands

import (
	"bytes"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
)

// The table view lists changed components, each one's notes, files and
// key counts; unchanged components only with --all.
func TestRenderDiff_FilesKeysNotesAndUnchanged(t *testing.T) {
	r := &statediff.Result{From: statediff.Side{Ref: "shop/seed:v1"}, To: statediff.Side{Ref: "shop/seed:v2"}, Components: []statediff.Component{
		{Name: "uploads", Kind: "volume", Change: statediff.Changed, SizeBefore: 2048, SizeAfter: 4096, Files: []statediff.File{
			{Path: "img/a.png", Change: statediff.Changed, Type: "file", SizeBefore: 1024, SizeAfter: 3072},
			{Path: "img/new", Change: statediff.Added, Type: "dir"},
		}},
		{Name: "cache", Kind: "redis", Change: statediff.Changed, Keys: []statediff.KeyCount{{DB: 0, Type: "hash", Before: 2, After: 5}}},
		{Name: "old", Kind: "postgres", Change: statediff.Changed, Notes: []string{"from: " + statediff.NoSummary}},
		{Name: "search", Kind: "opensearch", Change: statediff.Unchanged},
	}}
	var b bytes.Buffer
	if err := renderDiff(&b, r, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"uploads    volume    changed  2.0 KiB -> 4.0 KiB", "img/a.png  changed  1.0 KiB -> 3.0 KiB", "img/new    added    dir",
		"0   hash  2 -> 5", "old: from: summary not recorded"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "search") {
		t.Errorf("unchanged component listed without --all:\n%s", out)
	}
	b.Reset()
	_ = renderDiff(&b, r, true)
	if !strings.Contains(b.String(), "search") {
		t.Errorf("--all:\n%s", b.String())
	}
}
