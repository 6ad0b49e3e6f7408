// Package statediff compares two versions of a state from their manifests
// alone: per component, what changed in size and content, and, from the
// summaries captures record (statepkg.Summary), tables with row counts and
// sizes, schema changes as a unified diff, Redis key counts, and a volume's
// files. No chunk is read, so a diff costs the two manifests' download.
package statediff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Change says how an item differs between the two sides.
type Change string

// Changes.
const (
	Added     Change = "added"
	Removed   Change = "removed"
	Changed   Change = "changed"
	Unchanged Change = "unchanged"
)

// NoSummary is the note on a side whose capture recorded no summary.
const NoSummary = "summary not recorded (captured before 0.1.0 recorded summaries for diffs; capture again to compare its content)"

// Side names one of the two versions compared.
type Side struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
}

// Result is the difference between two versions.
type Result struct {
	From       Side        `json:"from"`
	To         Side        `json:"to"`
	Components []Component `json:"components"`
}

// Changed reports whether anything differs.
func (r *Result) Changed() bool {
	for _, c := range r.Components {
		if c.Change != Unchanged {
			return true
		}
	}
	return false
}

// Component is one component's difference. Detail lists hold changed items
// only.
type Component struct {
	Name       string        `json:"name"`
	Kind       statepkg.Kind `json:"kind"`
	Change     Change        `json:"change"`
	SizeBefore int64         `json:"sizeBefore"`
	SizeAfter  int64         `json:"sizeAfter"`
	// Notes say what could not be compared and why.
	Notes  []string `json:"notes,omitempty"`
	Tables []Table  `json:"tables,omitempty"`
	// SchemaChanged is set when the schemas differ; SchemaDiff is then the
	// unified diff of the two (empty when a schema was too large to keep).
	SchemaChanged bool       `json:"schemaChanged,omitempty"`
	SchemaDiff    string     `json:"schemaDiff,omitempty"`
	Files         []File     `json:"files,omitempty"`
	Keys          []KeyCount `json:"keys,omitempty"`
	Meta          []Meta     `json:"meta,omitempty"`
}

// Table is one table's difference.
type Table struct {
	Name        string `json:"name"`
	Change      Change `json:"change"`
	RowsBefore  int64  `json:"rowsBefore"`
	RowsAfter   int64  `json:"rowsAfter"`
	BytesBefore int64  `json:"bytesBefore"`
	BytesAfter  int64  `json:"bytesAfter"`
}

// File is one volume file's difference.
type File struct {
	Path       string `json:"path"`
	Change     Change `json:"change"`
	Type       string `json:"type"`
	SizeBefore int64  `json:"sizeBefore"`
	SizeAfter  int64  `json:"sizeAfter"`
}

// KeyCount is a Redis database's count of keys of one type on both sides.
type KeyCount struct {
	DB     int    `json:"db"`
	Type   string `json:"type"`
	Before int64  `json:"before"`
	After  int64  `json:"after"`
}

// Meta is a component meta value (server version, ...) that differs.
type Meta struct {
	Key    string `json:"key"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Diff compares version from with version to. An error means a manifest
// holds a summary this build cannot read (a newer one, or damaged).
func Diff(from, to Side, a, b *statepkg.Manifest) (*Result, error) {
	r := &Result{From: from, To: to, Components: []Component{}}
	before := make(map[string]*statepkg.Component, len(a.Components))
	for i := range a.Components {
		before[a.Components[i].Name] = &a.Components[i]
	}
	seen := map[string]bool{}
	for i := range b.Components {
		cb := &b.Components[i]
		seen[cb.Name] = true
		ca := before[cb.Name]
		if ca == nil {
			r.Components = append(r.Components, Component{Name: cb.Name, Kind: cb.Kind, Change: Added, SizeAfter: cb.Size})
			continue
		}
		c, err := component(ca, cb)
		if err != nil {
			return nil, err
		}
		r.Components = append(r.Components, c)
	}
	for i := range a.Components {
		ca := &a.Components[i]
		if !seen[ca.Name] {
			r.Components = append(r.Components, Component{Name: ca.Name, Kind: ca.Kind, Change: Removed, SizeBefore: ca.Size})
		}
	}
	return r, nil
}

func component(a, b *statepkg.Component) (Component, error) {
	c := Component{Name: b.Name, Kind: b.Kind, Change: Unchanged, SizeBefore: a.Size, SizeAfter: b.Size}
	if a.Kind != b.Kind || a.Digest != b.Digest || a.Format != b.Format {
		c.Change = Changed
	}
	if a.Kind != b.Kind {
		c.Notes = append(c.Notes, fmt.Sprintf("kind changed from %s to %s", a.Kind, b.Kind))
		return c, nil
	}
	c.Meta = metaDiff(a.Meta, b.Meta)
	if c.Change == Unchanged {
		return c, nil
	}
	if b.Kind == statepkg.KindVolume {
		c.Files = filesDiff(a.Files, b.Files)
		return c, nil
	}
	sa, okA, err := statepkg.ComponentSummary(a)
	if err != nil {
		return c, err
	}
	sb, okB, err := statepkg.ComponentSummary(b)
	if err != nil {
		return c, err
	}
	switch {
	case !okA && !okB:
		if summarised(b.Kind) {
			c.Notes = append(c.Notes, NoSummary)
		}
		return c, nil
	case !okA:
		c.Notes = append(c.Notes, "from: "+NoSummary)
		return c, nil
	case !okB:
		c.Notes = append(c.Notes, "to: "+NoSummary)
		return c, nil
	}
	c.Tables = tablesDiff(sa.Tables, sb.Tables)
	if sa.SchemaDigest != sb.SchemaDigest {
		c.SchemaChanged = true
		if sa.Schema != "" && sb.Schema != "" {
			c.SchemaDiff = udiff.Unified("from/"+a.Name+".schema.sql", "to/"+b.Name+".schema.sql", sa.Schema, sb.Schema)
		} else {
			c.Notes = append(c.Notes, "schema changed; too large to show a diff")
		}
	}
	c.Keys = keysDiff(sa.Keys, sb.Keys)
	return c, nil
}

// summarised reports whether captures of kind record a summary.
func summarised(k statepkg.Kind) bool {
	return k == statepkg.KindPostgres || k == statepkg.KindMySQL || k == statepkg.KindRedis
}

func tablesDiff(a, b []statepkg.TableSummary) []Table {
	before := make(map[string]statepkg.TableSummary, len(a))
	for _, t := range a {
		before[t.Name] = t
	}
	out := []Table{}
	seen := map[string]bool{}
	for _, t := range b {
		seen[t.Name] = true
		o, ok := before[t.Name]
		switch {
		case !ok:
			out = append(out, Table{Name: t.Name, Change: Added, RowsAfter: t.Rows, BytesAfter: t.Bytes})
		case o.Digest != t.Digest:
			out = append(out, Table{Name: t.Name, Change: Changed, RowsBefore: o.Rows, RowsAfter: t.Rows, BytesBefore: o.Bytes, BytesAfter: t.Bytes})
		}
	}
	for _, t := range a {
		if !seen[t.Name] {
			out = append(out, Table{Name: t.Name, Change: Removed, RowsBefore: t.Rows, BytesBefore: t.Bytes})
		}
	}
	slices.SortStableFunc(out, func(x, y Table) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func filesDiff(a, b []statepkg.FileEntry) []File {
	before := make(map[string]*statepkg.FileEntry, len(a))
	for i := range a {
		before[a[i].Path] = &a[i]
	}
	out := []File{}
	seen := make(map[string]bool, len(b))
	for i := range b {
		f := &b[i]
		seen[f.Path] = true
		o := before[f.Path]
		switch {
		case o == nil:
			out = append(out, File{Path: f.Path, Change: Added, Type: f.Type, SizeAfter: f.Size})
		case o.Type != f.Type || o.Size != f.Size || o.SHA256 != f.SHA256 || o.Linkname != f.Linkname || o.Mode != f.Mode || o.UID != f.UID || o.GID != f.GID:
			out = append(out, File{Path: f.Path, Change: Changed, Type: f.Type, SizeBefore: o.Size, SizeAfter: f.Size})
		}
	}
	for i := range a {
		if !seen[a[i].Path] {
			out = append(out, File{Path: a[i].Path, Change: Removed, Type: a[i].Type, SizeBefore: a[i].Size})
		}
	}
	slices.SortStableFunc(out, func(x, y File) int { return strings.Compare(x.Path, y.Path) })
	return out
}

func keysDiff(a, b []statepkg.KeyCount) []KeyCount {
	type key struct {
		db  int
		typ string
	}
	m := map[key]*KeyCount{}
	for _, k := range a {
		m[key{k.DB, k.Type}] = &KeyCount{DB: k.DB, Type: k.Type, Before: k.Count}
	}
	for _, k := range b {
		kc := m[key{k.DB, k.Type}]
		if kc == nil {
			kc = &KeyCount{DB: k.DB, Type: k.Type}
			m[key{k.DB, k.Type}] = kc
		}
		kc.After = k.Count
	}
	out := []KeyCount{}
	for _, kc := range m {
		out = append(out, *kc)
	}
	slices.SortFunc(out, func(x, y KeyCount) int {
		if x.DB != y.DB {
			return x.DB - y.DB
		}
		return strings.Compare(x.Type, y.Type)
	})
	return out
}

func metaDiff(a, b map[string]string) []Meta {
	var out []Meta
	for k, v := range b {
		if k != statepkg.MetaSummary && a[k] != v {
			out = append(out, Meta{Key: k, Before: a[k], After: v})
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok && k != statepkg.MetaSummary {
			out = append(out, Meta{Key: k, Before: v})
		}
	}
	slices.SortFunc(out, func(x, y Meta) int { return strings.Compare(x.Key, y.Key) })
	return out
}
