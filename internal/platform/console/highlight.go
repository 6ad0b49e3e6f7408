package console

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
)

// lexerFor is chroma's lexer for each script interpreter; a script of any
// other is shown plain.
var lexerFor = map[string]string{"sh": "bash", "bash": "bash", "python": "python"}

// highlightStyle is the chroma style highlight.css is made from.
const highlightStyle = "github"

// highlighter marks a script's source up with CSS classes (never inline
// styles: the console's Content-Security-Policy forbids them), on the
// server, so the page needs no script and makes no request to anyone.
type highlighter struct {
	format *chromahtml.Formatter
	css    []byte
}

func newHighlighter() (*highlighter, error) {
	f := chromahtml.New(chromahtml.WithClasses(true), chromahtml.PreventSurroundingPre(true))
	var css bytes.Buffer
	if err := f.WriteCSS(&css, styles.Get(highlightStyle)); err != nil {
		return nil, fmt.Errorf("console: highlight styles: %w", err)
	}
	return &highlighter{format: f, css: css.Bytes()}, nil
}

// source is src as HTML: highlighted when the interpreter has a lexer,
// escaped text otherwise (and when highlighting fails: the source is
// always shown).
func (h *highlighter) source(interpreter, src string) template.HTML {
	plain := template.HTML(template.HTMLEscapeString(src)) //nolint:gosec // escaped just here
	name, ok := lexerFor[interpreter]
	if !ok {
		return plain
	}
	lexer := lexers.Get(name)
	if lexer == nil {
		return plain
	}
	it, err := chroma.Coalesce(lexer).Tokenise(nil, src)
	if err != nil {
		return plain
	}
	var out bytes.Buffer
	if err := h.format.Format(&out, styles.Get(highlightStyle), it); err != nil {
		return plain
	}
	// chroma escapes every token's text (html.EscapeString) and adds only
	// its own span elements with class names.
	return template.HTML(out.String()) //nolint:gosec // chroma's escaped output
}
