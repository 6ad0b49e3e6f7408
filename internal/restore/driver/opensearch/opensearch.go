// Package opensearch captures OpenSearch and Elasticsearch 7/8 indexes
// (settings, mappings, aliases and every document, sorted by _id) into an
// NDJSON stream, and restores it into new indexes that one atomic _aliases
// call puts in place of the old ones, which stay as rollback copies.
package opensearch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Format is the stream this driver writes.
const Format = "opensearch-dump"

// Driver is the OpenSearch/Elasticsearch driver.
type Driver struct{}

// New returns the driver.
func New() *Driver { return &Driver{} }

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindOpenSearch }

// TargetOptions implements driver.OptionLister.
func (*Driver) TargetOptions() []string { return []string{OptCAFile, OptWorkers, OptBulkBytes} }

// Marker is what a restored index carries in its mapping's _meta.unikube.
type Marker = unikubeMeta

// served is how a name is served now: by the concrete indexes it resolves
// to (one, for an index or a plain alias).
type served struct {
	concrete map[string]indexAliases // concrete index -> its aliases
	isIndex  bool                    // the name is a concrete index itself
}

type indexAliases struct {
	Aliases map[string]json.RawMessage `json:"aliases"`
}

// lookup says how name is served now; nil when nothing has that name.
func (c *client) lookup(ctx context.Context, name string) (*served, error) {
	var got map[string]indexAliases
	err := c.do(ctx, http.MethodGet, "/"+esc(name)+"/_alias?expand_wildcards=open,closed", nil, &got)
	if statusOf(err) == http.StatusNotFound {
		// An index without aliases answers 200 {}; 404 means no such name.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, nil
	}
	s := &served{concrete: got}
	_, s.isIndex = got[name]
	return s, nil
}

// markerOf reads _meta.unikube of a concrete index.
func (c *client) markerOf(ctx context.Context, concrete string) (*Marker, error) {
	var got map[string]struct {
		Mappings map[string]json.RawMessage `json:"mappings"`
	}
	if err := c.do(ctx, http.MethodGet, "/"+esc(concrete)+"/_mapping", nil, &got); err != nil {
		return nil, err
	}
	for _, v := range got {
		return ourMeta(v.Mappings), nil
	}
	return nil, nil
}

// ReadMarker returns the marker of the index serving name at a server URL
// (http(s)://[user:password@]host:port), nil when it has none.
func ReadMarker(ctx context.Context, rawURL, name string) (*Marker, error) {
	c, _, err := newClient(rawURL, func(_, def string) string { return def })
	if err != nil {
		return nil, err
	}
	s, err := c.lookup(ctx, name)
	if err != nil || s == nil || len(s.concrete) != 1 {
		return nil, err
	}
	for concrete := range s.concrete {
		return c.markerOf(ctx, concrete)
	}
	return nil, nil
}

func componentIndexes(c statepkg.Component) []string {
	var out []string
	for _, n := range strings.Split(c.Meta["indexes"], ",") {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Plan implements driver.Driver. It checks the server and credentials,
// then compares each index's marker with the component.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	pl := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: driver.Redact(t.URL), Strategy: "alias-swap", Atomic: true, Bytes: c.Size}
	if c.Format != Format {
		return pl, fmt.Errorf("format %q: the opensearch driver restores %s", c.Format, Format)
	}
	if err := driver.CheckOptions(d, t.Options); err != nil {
		return pl, err
	}
	cl, patterns, err := newClient(t.URL, t.Option)
	if err != nil {
		return pl, err
	}
	if len(patterns) > 0 {
		return pl, fmt.Errorf("target %s: give the server only (http(s)://host:port); the indexes come from the captured state (%s)", pl.Target, c.Meta["indexes"])
	}
	if _, err := cl.hello(ctx); err != nil {
		return pl, err
	}
	names := componentIndexes(c)
	existing, current := 0, 0
	for _, n := range names {
		s, err := cl.lookup(ctx, n)
		if err != nil {
			return pl, fmt.Errorf("look up index %s: %w", n, err)
		}
		if s == nil {
			continue
		}
		existing++
		if len(s.concrete) > 1 {
			return pl, fmt.Errorf("alias %s points at %d indexes; an apply can only replace one", n, len(s.concrete))
		}
		for concrete := range s.concrete {
			m, err := cl.markerOf(ctx, concrete)
			if err != nil {
				return pl, fmt.Errorf("read marker of %s: %w", concrete, err)
			}
			if m != nil && m.ComponentDigest == c.Digest {
				current++
				pl.Current = m.ComponentDigest
			}
		}
	}
	summary := planSummary(c, names)
	switch {
	case len(names) > 0 && current == len(names) && !t.Force:
		pl.Action, pl.Reason, pl.Bytes = driver.ActionSkip, "already applied", 0
	case existing == 0:
		pl.Action, pl.Reason = driver.ActionCreate, summary
	default:
		pl.Action, pl.Reason = driver.ActionReplace, summary
	}
	return pl, nil
}

// planSummary says what an apply loads: documents, stream size and the
// indexes by name (the first few).
func planSummary(c statepkg.Component, names []string) string {
	what := "indexes"
	if len(names) == 1 {
		what = "index"
	}
	shown := names
	if len(shown) > 5 {
		shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(names)-5))
	}
	return fmt.Sprintf("%s documents, %.1f MiB, in %d %s: %s", orZero(c.Meta["documents"]), float64(c.Size)/(1<<20), len(names), what, strings.Join(shown, ", "))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// shortDigest names the new indexes after the component's content.
func shortDigest(digest string) string {
	if h, ok := strings.CutPrefix(digest, "sha256:"); ok && len(h) >= 8 {
		return h[:8]
	}
	sum := sha256.Sum256([]byte(digest))
	return hex.EncodeToString(sum[:4])
}

// errCorrupt marks a damaged stream.
var errCorrupt = errors.New("damaged opensearch-dump stream")
