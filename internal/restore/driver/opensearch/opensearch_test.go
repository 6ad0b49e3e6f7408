package opensearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// One node serves the package: it takes 15-50 s to start.
var shared struct {
	once sync.Once
	node *testenv.OpenSearch
	stop func() error
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop opensearch:", err)
		}
	}
	os.Exit(code)
}

func node(t testing.TB) *testenv.OpenSearch {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.node, shared.stop, shared.err = testenv.RunOpenSearch(context.Background(), "")
		if shared.err == nil {
			fmt.Fprintf(os.Stderr, "opensearch node ready in %s\n", time.Since(start).Round(time.Millisecond))
		}
	})
	var ni *testenv.NotInstalledError
	if errors.As(shared.err, &ni) {
		testenv.Missing(t, "testenv: opensearch is not installed: %v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("start opensearch: %v", shared.err)
	}
	return shared.node
}

// call sends one request and decodes a 2xx answer into out.
func call(t testing.TB, base, method, path string, body any, out any) {
	t.Helper()
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
		if strings.HasSuffix(path, "_bulk") || strings.Contains(path, "_bulk?") {
			ctype = "application/x-ndjson"
		}
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if bytes.Contains(b, []byte(`"errors":true`)) {
		t.Fatalf("%s %s: %s", method, path, b)
	}
}

// docs returns every document served under name, by _id, as compact JSON
// of {_routing, _source}.
func docs(t *testing.T, base, name string) map[string]string {
	t.Helper()
	call(t, base, "POST", "/"+name+"/_refresh", nil, nil)
	var ans struct {
		Hits struct {
			Hits []struct {
				ID      string          `json:"_id"`
				Routing string          `json:"_routing"`
				Source  json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	call(t, base, "POST", "/"+name+"/_search", map[string]any{"size": 10000, "query": map[string]any{"match_all": map[string]any{}}}, &ans)
	out := map[string]string{}
	for _, h := range ans.Hits.Hits {
		var src any
		if err := json.Unmarshal(h.Source, &src); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(src)
		out[h.ID] = h.Routing + " " + string(b)
	}
	return out
}

func sameDocs(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d documents, want %d", what, len(got), len(want))
	}
	bad := 0
	for id, v := range want {
		if got[id] != v && bad < 5 {
			bad++
			t.Errorf("%s: document %q: got %.80s, want %.80s", what, id, got[id], v)
		}
	}
}

// indexes lists concrete index names matching pattern.
func indexes(t *testing.T, base, pattern string) []string {
	t.Helper()
	var rows []struct {
		Index string `json:"index"`
	}
	call(t, base, "GET", "/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=all", nil, &rows)
	var out []string
	for _, r := range rows {
		out = append(out, r.Index)
	}
	sort.Strings(out)
	return out
}

// servedBy returns the concrete index behind an alias ("" when name is an
// index itself or missing).
func servedBy(t *testing.T, base, name string) string {
	t.Helper()
	var got map[string]any
	call(t, base, "GET", "/"+name+"/_alias", nil, &got)
	for k := range got {
		if k != name {
			return k
		}
	}
	return ""
}

const awkwardIndex = `{
  "settings": {
    "number_of_shards": 2,
    "analysis": {
      "filter": {"shelf_synonyms": {"type": "synonym", "synonyms": ["tome, book"]}},
      "analyzer": {"folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding", "shelf_synonyms"]}}
    }
  },
  "mappings": {
    "_meta": {"owner": "catalogue"},
    "properties": {
      "title":   {"type": "text", "analyzer": "folded"},
      "tags":    {"type": "keyword"},
      "where":   {"type": "geo_point"},
      "authors": {"type": "nested", "properties": {"name": {"type": "text"}, "born": {"type": "integer"}}},
      "body":    {"type": "text", "index": false}
    }
  },
  "aliases": {"library": {}, "recent": {"filter": {"term": {"tags": "new"}}}}
}`

// seedAwkward creates index books with awkward documents.
func seedAwkward(t *testing.T, base string) {
	t.Helper()
	call(t, base, "PUT", "/books", awkwardIndex, nil)
	long := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing élit. ", 20000) // ~1.1 MiB
	ds := []struct {
		id, routing string
		src         map[string]any
	}{
		{"1", "", map[string]any{"title": "Été à Zürich", "tags": []string{"travel", "new"}, "where": map[string]any{"lat": 47.37, "lon": 8.54}}},
		{"ключ/ä 😀", "", map[string]any{"title": "unicode id", "authors": []any{map[string]any{"name": "Анна", "born": 1901}, map[string]any{"name": "李", "born": 1950}}}},
		{"with \"quotes\" and \\ and %2F", "", map[string]any{"title": "ids with url characters", "where": "drm3btev3e86"}},
		{"routed", "shelf-7", map[string]any{"title": "a tome with routing", "tags": []string{}}},
		{"long", "", map[string]any{"title": "very long text", "body": long}},
		{"nulls", "", map[string]any{"title": nil, "tags": []any{"a", nil, "b"}, "extra": map[string]any{"deep": map[string]any{"deeper": []any{1, 2, 3}, "flag": true}}}},
	}
	var bulk strings.Builder
	for _, d := range ds {
		action := map[string]any{"_index": "books", "_id": d.id}
		if d.routing != "" {
			action["routing"] = d.routing
		}
		a, _ := json.Marshal(map[string]any{"index": action})
		s, _ := json.Marshal(d.src)
		bulk.Write(a)
		bulk.WriteByte('\n')
		bulk.Write(s)
		bulk.WriteByte('\n')
	}
	call(t, base, "POST", "/_bulk?refresh=true", bulk.String(), nil)
}

func TestOpenSearch_AwkwardDocumentsAliasesAnalyzersAndRollbackCopies(t *testing.T) {
	o := node(t)
	ctx := context.Background()
	seedAwkward(t, o.URL)
	v1 := docs(t, o.URL, "books")
	d := opensearch.New()
	store := drivertest.NewStore(t)
	start := time.Now()
	c1 := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/books"}, store, "search")
	t.Logf("captured %s documents (%d bytes) in %s", c1.Meta["documents"], c1.Size, time.Since(start).Round(time.Millisecond))
	if c1.Meta["indexes"] != "books" || c1.Meta["documents"] != "6" {
		t.Fatalf("capture meta %v", c1.Meta)
	}

	// The app changes its data; applying c1 brings v1 back.
	call(t, o.URL, "DELETE", "/books/_doc/1?refresh=true", nil, nil)
	call(t, o.URL, "PUT", "/books/_doc/added?refresh=true", `{"title": "added after the capture"}`, nil)
	changed := docs(t, o.URL, "books")

	pl, err := d.Plan(ctx, c1, driver.Target{URL: o.URL})
	if err != nil || pl.Action != driver.ActionReplace {
		t.Fatalf("plan %+v, %v; want replace", pl, err)
	}
	start = time.Now()
	res, err := drivertest.Restore(ctx, d, c1, store, o.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied in %s: %+v", time.Since(start).Round(time.Millisecond), res)
	if res.Rows != 6 {
		t.Errorf("restored %d documents, want 6", res.Rows)
	}
	sameDocs(t, "books after apply", v1, docs(t, o.URL, "books"))
	served := servedBy(t, o.URL, "books")
	if !strings.HasPrefix(served, "books-unikube-") {
		t.Fatalf("books is served by %q, want a books-unikube-* index", served)
	}
	// Aliases, the filtered one included, moved with the data.
	sameDocs(t, "alias library", v1, docs(t, o.URL, "library"))
	if got := docs(t, o.URL, "recent"); len(got) != 1 || got["1"] == "" {
		t.Errorf("filtered alias recent serves %v, want only document 1", got)
	}
	// The custom analyzer (folding and synonyms) came along.
	var hits struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	call(t, o.URL, "POST", "/books/_search", `{"query": {"match": {"title": "zurich book"}}}`, &hits)
	if ids := fmt.Sprint(hits.Hits.Hits); !strings.Contains(ids, "{1}") || !strings.Contains(ids, "{routed}") {
		t.Errorf("search for zurich book (folded, synonym of tome) found %s, want 1 and routed", ids)
	}
	// Settings came along, replicas and refresh as they were.
	var settings map[string]struct {
		Settings map[string]any `json:"settings"`
	}
	call(t, o.URL, "GET", "/books/_settings?flat_settings=true", nil, &settings)
	s := settings[served].Settings
	if s["index.number_of_shards"] != "2" || s["index.number_of_replicas"] != "1" || s["index.refresh_interval"] != nil || s["index.analysis.analyzer.folded.type"] != "custom" {
		t.Errorf("settings of %s: shards %q replicas %q refresh %q", served, s["index.number_of_shards"], s["index.number_of_replicas"], s["index.refresh_interval"])
	}
	// The replaced concrete index lives on as the rollback copy.
	if !strings.HasPrefix(res.Previous, "books-unikube-prev-") {
		t.Fatalf("previous = %q", res.Previous)
	}
	sameDocs(t, "rollback copy", changed, docs(t, o.URL, res.Previous))
	// What a diff compares: a capture of the restored index has the same
	// per-index counts and mapping digest as the version applied.
	back := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/books"}, drivertest.NewStore(t), "search")
	for _, k := range []string{opensearch.MetaIndexDocs, opensearch.MetaMappings} {
		if back.Meta[k] != c1.Meta[k] || c1.Meta[k] == "" {
			t.Errorf("meta %s of the restored index = %q, of the version %q", k, back.Meta[k], c1.Meta[k])
		}
	}
	if c1.Meta[opensearch.MetaIndexDocs] != "books:6" {
		t.Errorf("meta %s = %q, want books:6", opensearch.MetaIndexDocs, c1.Meta[opensearch.MetaIndexDocs])
	}
	m, err := opensearch.ReadMarker(ctx, o.URL, "books")
	if err != nil || m == nil || m.ComponentDigest != c1.Digest || m.State != "test/state" {
		t.Errorf("marker %+v, %v", m, err)
	}

	// Re-applying the same version fetches nothing.
	cs := &drivertest.CountingStore{ChunkStore: store}
	if res, err := drivertest.Restore(ctx, d, c1, cs, o.URL, nil); err != nil || res.Action != driver.ActionSkip || cs.Gets.Load() != 0 {
		t.Errorf("re-apply: %+v, %v, %d chunks", res, err, cs.Gets.Load())
	}

	// A capture of the restored data reads it under its served name, and
	// is the same stream (the marker is not part of it).
	again := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/books"}, store, "search")
	if again.Digest != c1.Digest {
		t.Errorf("capture after restore has digest %s, the restored one %s", again.Digest, c1.Digest)
	}
	// Every index (other tests' too: the node is shared) is listed under
	// its served name, without rollback copies.
	all := drivertest.Capture(t, d, driver.Source{URL: o.URL}, store, "search")
	if listed := "," + all.Meta["indexes"] + ","; !strings.Contains(listed, ",books,") || strings.Contains(listed, "-unikube-") {
		t.Errorf("capture of every index lists %q", all.Meta["indexes"])
	}

	// A second version replaces the first, which becomes the rollback copy;
	// older copies are dropped.
	call(t, o.URL, "PUT", "/books/_doc/v2?refresh=true", `{"title": "second version"}`, nil)
	v2 := docs(t, o.URL, "books")
	c2 := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/books"}, store, "search")
	call(t, o.URL, "DELETE", "/books/_doc/v2?refresh=true", nil, nil)
	res2, err := drivertest.Restore(ctx, d, c2, store, o.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameDocs(t, "books after the second apply", v2, docs(t, o.URL, "books"))
	if res2.Previous != served {
		t.Errorf("previous = %q, want %q", res2.Previous, served)
	}
	if got := indexes(t, o.URL, "books*"); len(got) != 2 {
		t.Errorf("books indexes after the second apply: %v; want the served one and one rollback copy", got)
	}

	failures := map[string]func() error{
		"corrupt chunk": func() error {
			_, err := drivertest.Restore(ctx, d, c1, drivertest.CorruptStore{ChunkStore: store, Digest: c1.Chunks[len(c1.Chunks)-1].Digest}, o.URL, nil)
			return err
		},
		"cancelled mid-load": func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := drivertest.Restore(cctx, d, c1, &drivertest.CancelStore{ChunkStore: store, After: len(c1.Chunks) - 1, Cancel: cancel}, o.URL, nil)
			return err
		},
	}
	before := indexes(t, o.URL, "books*")
	for name, run := range failures {
		t.Run("failure leaves the target serving: "+name, func(t *testing.T) {
			err := run()
			if err == nil || !strings.HasPrefix(err.Error(), "restore search: restore: ") {
				t.Fatalf("err = %v; want a restore-phase error naming the component", err)
			}
			sameDocs(t, "books after a failed apply", v2, docs(t, o.URL, "books"))
			if got := indexes(t, o.URL, "books*"); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("indexes after a failed apply: %v, before: %v", got, before)
			}
		})
	}
}

func TestOpenSearch_WrongPasswordAndUntrustedCertificateFailBeforeAnyChange(t *testing.T) {
	o := node(t)
	ctx := context.Background()
	call(t, o.URL, "PUT", "/guarded", `{"settings": {"number_of_replicas": 0}}`, nil)
	call(t, o.URL, "PUT", "/guarded/_doc/1?refresh=true", `{"v": 1}`, nil)
	d := opensearch.New()
	store := drivertest.NewStore(t)
	c := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/guarded"}, store, "search")
	f := o.SecureFront(t)
	host := strings.TrimPrefix(f.URL, "https://")

	cases := []struct {
		name, url string
		opts      map[string]string
		want      string
	}{
		{"wrong password", "https://" + f.User + ":wrong@" + host, map[string]string{opensearch.OptCAFile: f.CA.CertFile}, "authentication failed"},
		{"untrusted certificate", "https://" + f.User + ":" + f.Password + "@" + host, nil, "TLS certificate is not trusted"},
		{"plain http to a TLS port", "http://" + f.User + ":" + f.Password + "@" + host, nil, "use an https:// URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := indexes(t, o.URL, "guarded*")
			_, err := drivertest.Restore(ctx, d, c, store, tc.url, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "restore search: plan: ") {
				t.Fatalf("err = %v; want a plan error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), f.Password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if got := indexes(t, o.URL, "guarded*"); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("indexes changed: %v, before %v", got, before)
			}
			_, err = drivertest.CaptureErr(ctx, d, driver.Source{URL: tc.url + "/guarded", Options: tc.opts}, store, "search")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("capture err = %v; want %q", err, tc.want)
			}
		})
	}
	t.Run("right password and CA", func(t *testing.T) {
		good := "https://" + f.User + ":" + f.Password + "@" + host
		opts := map[string]string{opensearch.OptCAFile: f.CA.CertFile}
		pl, err := d.Plan(ctx, c, driver.Target{URL: good, Options: opts})
		if err != nil || pl.Action != driver.ActionReplace {
			t.Fatalf("plan %+v, %v", pl, err)
		}
		if strings.Contains(pl.Target, f.Password) {
			t.Errorf("plan target shows the password: %s", pl.Target)
		}
	})
}

// seedMany bulk-loads n small documents into index name.
func seedMany(t *testing.T, base, name string, n int, version func(i int) int) {
	t.Helper()
	for from := 0; from < n; from += 5000 {
		var b strings.Builder
		for i := from; i < min(from+5000, n); i++ {
			fmt.Fprintf(&b, `{"index":{"_index":%q,"_id":"doc-%07d"}}`+"\n", name, i)
			fmt.Fprintf(&b, `{"n":%d,"version":%d,"text":"document %d of the catalogue, a line of ordinary words"}`+"\n", i, version(i), i)
		}
		call(t, base, "POST", "/_bulk", b.String(), nil)
	}
	call(t, base, "POST", "/"+name+"/_refresh", nil, nil)
}

func count(t testing.TB, base, name, query string) int64 {
	t.Helper()
	var c struct {
		Count int64 `json:"count"`
	}
	call(t, base, "POST", "/"+name+"/_count", query, &c)
	return c.Count
}

func TestOpenSearch_IncrementalReapplyOfAOnePercentChange(t *testing.T) {
	o := node(t)
	ctx := context.Background()
	const n = 20000
	call(t, o.URL, "PUT", "/catalogue", `{"settings": {"number_of_replicas": 0}}`, nil)
	seedMany(t, o.URL, "catalogue", n, func(int) int { return 1 })
	d := opensearch.New()
	store := drivertest.NewStore(t)
	c1 := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/catalogue"}, store, "search")
	start := time.Now()
	if _, err := drivertest.Restore(ctx, d, c1, store, o.URL, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("first apply of %d documents (%d bytes): %s", n, c1.Size, time.Since(start).Round(time.Millisecond))

	// 1 % of the documents change: the newest ones, as in most catalogues.
	seedMany(t, o.URL, "catalogue", n, func(i int) int {
		if i >= n-n/100 {
			return 2
		}
		return 1
	})
	c2 := drivertest.Capture(t, d, driver.Source{URL: o.URL + "/catalogue"}, store, "search")
	old := map[string]bool{}
	for _, ch := range c1.Chunks {
		old[ch.Digest] = true
	}
	var newBytes int64
	for _, ch := range c2.Chunks {
		if !old[ch.Digest] {
			newBytes += ch.Size
		}
	}
	t.Logf("the second version shares all but %d of %d bytes with the first (%.1f %% new)", newBytes, c2.Size, 100*float64(newBytes)/float64(c2.Size))
	if newBytes > c2.Size/10 {
		t.Errorf("a 1 %% change made %d of %d bytes new; documents sorted by _id should dedup", newBytes, c2.Size)
	}
	// Back to version 1 by applying c1 over the changed data, then forward.
	start = time.Now()
	if _, err := drivertest.Restore(ctx, d, c2, store, o.URL, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("re-apply after a 1 %% change: %s", time.Since(start).Round(time.Millisecond))
	if got := count(t, o.URL, "catalogue", `{"query": {"term": {"version": 2}}}`); got != n/100 {
		t.Errorf("%d documents at version 2, want %d", got, n/100)
	}
	if got := count(t, o.URL, "catalogue", ""); got != n {
		t.Errorf("%d documents, want %d", got, n)
	}
}

func TestOpenSearch_DumpFileSourceAndDamagedStreams(t *testing.T) {
	o := node(t)
	call(t, o.URL, "PUT", "/notes", `{"settings": {"number_of_replicas": 0}}`, nil)
	call(t, o.URL, "PUT", "/notes/_doc/a?refresh=true", `{"text": "first"}`, nil)
	d := opensearch.New()
	var buf bytes.Buffer
	if _, err := d.Capture(context.Background(), driver.Source{URL: o.URL + "/notes"}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := dir + "/notes.ndjson"
	if err := os.WriteFile(good, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := d.Capture(context.Background(), driver.Source{URL: good}, io.Discard, nil)
	if err != nil || res.Meta["indexes"] != "notes" || res.Meta["documents"] != "1" {
		t.Fatalf("capture of a dump file: %+v, %v", res, err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	damaged := map[string]string{
		"truncated":          strings.Join(lines[:len(lines)-2], ""),
		"not a dump":         "{}\n",
		"count mismatch":     strings.Replace(buf.String(), `"docs":1}}`, `"docs":2}}`, 1),
		"bad index name":     strings.Replace(buf.String(), `"name":"notes"`, `"name":"../_all"`, 2),
		"source not object":  strings.Replace(buf.String(), `"_source":{"text":"first"}`, `"_source":"x"`, 1),
		"data after the end": buf.String() + "{}\n",
	}
	for name, body := range damaged {
		t.Run(name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(name, " ", "-")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Capture(context.Background(), driver.Source{URL: p}, io.Discard, nil); err == nil {
				t.Fatalf("a %s dump was accepted", name)
			}
		})
	}
}

var _ = statepkg.KindOpenSearch

// hostileDump captures an index to a dump file whose index header edit
// changes, as a package from another tenant could.
func hostileDump(t *testing.T, base, index string, edit func(h map[string]any)) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := opensearch.New().Capture(context.Background(), driver.Source{URL: base + "/" + index}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	var rec map[string]map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec["index"] == nil {
		t.Fatalf("line 2 is no index header: %v %s", err, lines[1])
	}
	edit(rec["index"])
	b, _ := json.Marshal(rec)
	lines[1] = string(b) + "\n"
	p := t.TempDir() + "/hostile.ndjson"
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenSearch_PackageCannotSetServerKeptSettings: settings a capture
// leaves out (blocks, uuid, lifecycle state, ...) are dropped from a
// package on restore too: a block from a hostile package would fail the
// apply and leave an index nobody can delete without lifting it by hand.
func TestOpenSearch_PackageCannotSetServerKeptSettings(t *testing.T) {
	o := node(t)
	ctx := context.Background()
	call(t, o.URL, "PUT", "/blocked", `{"settings": {"number_of_replicas": 0}}`, nil)
	call(t, o.URL, "PUT", "/blocked/_doc/a?refresh=true", `{"text": "first"}`, nil)
	d := opensearch.New()
	p := hostileDump(t, o.URL, "blocked", func(h map[string]any) {
		s, ok := h["settings"].(map[string]any)
		if !ok {
			t.Fatalf("header settings: %v", h["settings"])
		}
		s["index.blocks.metadata"] = "true"
		s["index.blocks.read_only"] = "true"
	})
	store := drivertest.NewStore(t)
	c := drivertest.Capture(t, d, driver.Source{URL: p}, store, "search")
	if _, err := drivertest.Restore(ctx, d, c, store, o.URL, nil); err != nil {
		t.Fatalf("apply: %v", err)
	}
	served := servedBy(t, o.URL, "blocked")
	var got map[string]map[string]map[string]any
	call(t, o.URL, "GET", "/"+served+"/_settings?flat_settings=true", nil, &got)
	for k := range got[served]["settings"] {
		if strings.HasPrefix(k, "index.blocks.") {
			t.Errorf("the restored index %s has %s from the package", served, k)
		}
	}
}
