package opensearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// Magic is the first line of every opensearch-dump stream.
const Magic = `{"unikube":"opensearch-dump","version":1}`

// Stream records, one JSON object a line: after the magic line, for each
// index (by name) its header, its documents sorted by _id (so an unchanged
// document is the same bytes in the next version and dedups), and an
// end_index record with the count; then an end record.
type record struct {
	Index    *indexHeader    `json:"index,omitempty"`
	EndIndex *endIndex       `json:"end_index,omitempty"`
	End      *endStream      `json:"end,omitempty"`
	ID       *string         `json:"_id,omitempty"`
	Routing  string          `json:"_routing,omitempty"`
	Source   json.RawMessage `json:"_source,omitempty"`
}

type indexHeader struct {
	Name     string                     `json:"name"`
	Settings map[string]any             `json:"settings"` // flat: "index.number_of_shards": "1"
	Mappings map[string]json.RawMessage `json:"mappings"`
	Aliases  map[string]json.RawMessage `json:"aliases"`
}

type endIndex struct {
	Name string `json:"name"`
	Docs int64  `json:"docs"`
}

type endStream struct {
	Indexes int   `json:"indexes"`
	Docs    int64 `json:"docs"`
}

// internalSettings are kept by the server for one physical index; a new
// index gets its own (prefixes of flat setting names).
var internalSettings = []string{
	"index.uuid", "index.creation_date", "index.provided_name", "index.version.",
	"index.routing.allocation.initial_recovery.", "index.resize.", "index.history.uuid",
	"index.verified_before_close", "index.blocks.", "index.frozen", "index.shrink.",
	"index.store.snapshot.", "index.lifecycle.", "index.plugins.index_state_management.",
}

func isInternal(key string) bool {
	for _, p := range internalSettings {
		if key == p || strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// indexInfo is one concrete index as GET /<pattern> returns it.
type indexInfo struct {
	Aliases  map[string]json.RawMessage `json:"aliases"`
	Mappings map[string]json.RawMessage `json:"mappings"`
	Settings map[string]any             `json:"settings"`
}

// unikubeMeta is what a restored index carries in its mapping's _meta: the
// name it is served under and the marker.
type unikubeMeta struct {
	Name            string `json:"name"`
	State           string `json:"state,omitempty"`
	Digest          string `json:"digest,omitempty"`
	Component       string `json:"component,omitempty"`
	ComponentDigest string `json:"componentDigest,omitempty"`
	AppliedAt       string `json:"appliedAt,omitempty"`
}

// ourMeta reads _meta.unikube of a mapping, nil when absent.
func ourMeta(mappings map[string]json.RawMessage) *unikubeMeta {
	var meta struct {
		Unikube *unikubeMeta `json:"unikube"`
	}
	if raw, ok := mappings["_meta"]; !ok || json.Unmarshal(raw, &meta) != nil {
		return nil
	}
	return meta.Unikube
}

// withoutOurMeta returns mappings minus _meta.unikube.
func withoutOurMeta(mappings map[string]json.RawMessage) map[string]json.RawMessage {
	raw, ok := mappings["_meta"]
	if !ok {
		return mappings
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(raw, &meta) != nil {
		return mappings
	}
	delete(meta, "unikube")
	out := make(map[string]json.RawMessage, len(mappings))
	for k, v := range mappings {
		out[k] = v
	}
	if len(meta) == 0 {
		delete(out, "_meta")
	} else {
		out["_meta"], _ = json.Marshal(meta)
	}
	return out
}

// logicalIndex is one index as users name it, and where it lives.
type logicalIndex struct {
	name     string
	concrete string
	info     indexInfo
}

// resolve lists the indexes patterns select, under the names clients use:
// an index this driver restored is listed under the alias it serves, and
// its rollback copies (no longer serving) are left out.
func (c *client) resolve(ctx context.Context, patterns []string) ([]logicalIndex, error) {
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	var all map[string]indexInfo
	path := "/" + esc(strings.Join(patterns, ",")) + "?flat_settings=true&expand_wildcards=open&ignore_unavailable=false"
	if err := c.do(ctx, http.MethodGet, path, nil, &all); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, fmt.Errorf("no index matches %s on %s: %w", strings.Join(patterns, ","), c.redacted, err)
		}
		return nil, err
	}
	var out []logicalIndex
	seen := map[string]bool{}
	for concrete, info := range all {
		if strings.HasPrefix(concrete, ".") {
			continue // system and hidden indexes
		}
		name := concrete
		if m := ourMeta(info.Mappings); m != nil && m.Name != "" {
			if _, serving := info.Aliases[m.Name]; !serving {
				continue // a rollback copy
			}
			name = m.Name
			info.Aliases = maps(info.Aliases, m.Name)
		}
		if seen[name] {
			return nil, fmt.Errorf("index %s is served by more than one index (%s among them); point its alias at one", name, concrete)
		}
		seen[name] = true
		info.Mappings = withoutOurMeta(info.Mappings)
		out = append(out, logicalIndex{name: name, concrete: concrete, info: info})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no index matches %s on %s", strings.Join(patterns, ","), c.redacted)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// maps returns m without key.
func maps(m map[string]json.RawMessage, key string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// userSettings flattens settings to strings and drops the internal ones.
func userSettings(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		if !isInternal(k) {
			out[k] = v
		}
	}
	return out
}

// Capture implements driver.Driver: a live server (http(s) URL whose path
// names index patterns, default every open index) or an opensearch-dump
// file written by an earlier capture.
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	name := src.Option("component", "search")
	if path, ok := driver.LocalPath(src.URL); ok {
		return captureFile(path, w)
	}
	c, patterns, err := newClient(src.URL, src.Option)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	info, err := c.hello(ctx)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	indexes, err := c.resolve(ctx, patterns)
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("opensearch capture: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if _, err := bw.WriteString(Magic + "\n"); err != nil {
		return driver.CaptureResult{}, err
	}
	var total int64
	var sum summary
	for _, ix := range indexes {
		h := indexHeader{Name: ix.name, Settings: userSettings(ix.info.Settings), Mappings: ix.info.Mappings, Aliases: ix.info.Aliases}
		sum.index(&h)
		if err := enc.Encode(record{Index: &h}); err != nil {
			return driver.CaptureResult{}, err
		}
		var n int64
		err := c.eachDoc(ctx, ix.concrete, func(h hit) error {
			id := h.ID
			if err := enc.Encode(record{ID: &id, Routing: h.Routing, Source: h.Source}); err != nil {
				return err
			}
			n++
			if n%1000 == 0 {
				p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Rows: 1000})
			}
			return nil
		})
		if err != nil {
			return driver.CaptureResult{}, fmt.Errorf("opensearch capture: index %s: %w", ix.name, err)
		}
		p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Rows: n % 1000})
		end := endIndex{Name: ix.name, Docs: n}
		sum.end(&end)
		if err := enc.Encode(record{EndIndex: &end}); err != nil {
			return driver.CaptureResult{}, err
		}
		total += n
	}
	if err := enc.Encode(record{End: &endStream{Indexes: len(indexes), Docs: total}}); err != nil {
		return driver.CaptureResult{}, err
	}
	if err := bw.Flush(); err != nil {
		return driver.CaptureResult{}, err
	}
	meta := sum.meta(total)
	meta["distribution"], meta["version"] = info.Version.Distribution, info.Version.Number
	return driver.CaptureResult{Format: Format, Meta: meta}, nil
}

// captureFile copies an opensearch-dump file, checking it on the way (so a
// damaged file fails the capture, not a later apply) and reading its meta.
func captureFile(path string, w io.Writer) (driver.CaptureResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("opensearch capture: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(w, 1<<20)
	var sum summary
	var docs int64
	err = readStream(bufio.NewReaderSize(f, 1<<20), func(line []byte, r *record) error {
		if r.Index != nil {
			sum.index(r.Index)
		}
		if r.EndIndex != nil {
			sum.end(r.EndIndex)
		}
		if r.End != nil {
			docs = r.End.Docs
		}
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("opensearch capture: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return driver.CaptureResult{}, err
	}
	meta := sum.meta(docs)
	meta["source"] = "file"
	return driver.CaptureResult{Format: Format, Meta: meta}, nil
}

// maxLine bounds one record: the servers' own default request limit.
const maxLine = 100 << 20

// readStream checks the structure of a stream and calls fn with each line
// (newline included) and its record; magic line first.
func readStream(r *bufio.Reader, fn func(line []byte, rec *record) error) error {
	var (
		cur     string
		inIndex bool
		docs    int64
		total   int64
		indexes int
		lastID  *string
		lineNo  int
		buf     []byte
	)
	for {
		line, err := readLine(r, &buf)
		if err == io.EOF {
			return fmt.Errorf("stream ended without its end record (truncated) after line %d", lineNo)
		}
		if err != nil {
			return err
		}
		lineNo++
		if lineNo == 1 {
			if string(bytes.TrimSpace(line)) != Magic {
				return fmt.Errorf("not an opensearch-dump stream (first line %.60q)", line)
			}
			if err := fn(line, &record{}); err != nil {
				return err
			}
			continue
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		switch {
		case rec.ID != nil:
			if !inIndex {
				return fmt.Errorf("line %d: document outside an index", lineNo)
			}
			if lastID != nil && *rec.ID == *lastID {
				return fmt.Errorf("line %d: document %q twice in index %s", lineNo, *rec.ID, cur)
			}
			if len(rec.Source) == 0 || rec.Source[0] != '{' {
				return fmt.Errorf("line %d: document %q has no _source object", lineNo, *rec.ID)
			}
			lastID = rec.ID
			docs++
		case rec.Index != nil:
			if inIndex {
				return fmt.Errorf("line %d: index %s starts before index %s ended", lineNo, rec.Index.Name, cur)
			}
			if err := validIndexName(rec.Index.Name); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
			cur, inIndex, docs, lastID = rec.Index.Name, true, 0, nil
		case rec.EndIndex != nil:
			if !inIndex || rec.EndIndex.Name != cur || rec.EndIndex.Docs != docs {
				return fmt.Errorf("line %d: end of index %s with %d documents, the stream holds %d in %s", lineNo, rec.EndIndex.Name, rec.EndIndex.Docs, docs, cur)
			}
			inIndex = false
			total += docs
			indexes++
		case rec.End != nil:
			if inIndex || rec.End.Docs != total || rec.End.Indexes != indexes {
				return fmt.Errorf("line %d: end record says %d documents in %d indexes, the stream holds %d in %d", lineNo, rec.End.Docs, rec.End.Indexes, total, indexes)
			}
			if err := fn(line, &rec); err != nil {
				return err
			}
			if _, err := r.ReadByte(); err != io.EOF {
				return fmt.Errorf("line %d: data after the end record", lineNo)
			}
			return nil
		default:
			return fmt.Errorf("line %d: unknown record %.60q", lineNo, line)
		}
		if err := fn(line, &rec); err != nil {
			return err
		}
	}
}

// readLine returns the next line including its newline, bounded by maxLine;
// the slice is valid until the next call.
func readLine(r *bufio.Reader, buf *[]byte) ([]byte, error) {
	*buf = (*buf)[:0]
	for {
		frag, err := r.ReadSlice('\n')
		*buf = append(*buf, frag...)
		if len(*buf) > maxLine {
			return nil, fmt.Errorf("a record longer than %d bytes", maxLine)
		}
		switch err {
		case nil:
			return *buf, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(*buf) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// validIndexName refuses names the servers refuse anyway, and any that
// could reach another API through the URL path.
func validIndexName(n string) error {
	if n == "" || len(n) > 200 || n == "." || n == ".." || strings.HasPrefix(n, "_") || strings.HasPrefix(n, "-") || strings.HasPrefix(n, "+") ||
		strings.ContainsAny(n, `\/*?"<>| ,#:`) || n != strings.ToLower(n) || slices.Contains([]string{"_all"}, n) {
		return fmt.Errorf("invalid index name %q", n)
	}
	return nil
}
