package console

import (
	"strings"
	"testing"
)

func TestHighlight_ClassesOnlyAndEscapedSource(t *testing.T) {
	h, err := newHighlighter()
	if err != nil {
		t.Fatal(err)
	}
	got := string(h.source("python", "import json\nprint('</code><script>alert(1)</script>')\n"))
	if !strings.Contains(got, `<span class="kn">import</span>`) {
		t.Errorf("python's import is not marked as a keyword:\n%s", got)
	}
	if strings.Contains(got, "<script") || strings.Contains(got, "</code>") || strings.Contains(got, "style=") {
		t.Errorf("the highlighted source lets markup or an inline style through:\n%s", got)
	}
	if plain := string(h.source("perl", "print '<b>';")); plain != "print &#39;&lt;b&gt;&#39;;" {
		t.Errorf("a script of an interpreter without a lexer is shown as %q, want it escaped and plain", plain)
	}
	if !strings.Contains(string(h.css), ".chroma .kn {") {
		t.Errorf("highlight.css has no rule for keywords:\n%.300s", h.css)
	}
}
