package statepkg

import (
	"encoding/json"
	"fmt"
)

// MetaSummary is the component meta key holding the component's Summary as
// JSON. It rides in Meta (not a new manifest field) so manifests stay
// readable by builds that predate it and their digests stay as they were.
const MetaSummary = "summary"

// SummaryVersion is the version of the Summary encoding this build writes.
const SummaryVersion = 1

// MaxSchemaText bounds the schema text a summary carries; a larger schema is
// recorded by digest only (a diff then says the schema changed, not how).
const MaxSchemaText = 256 << 10

// Summary is what a capture records about a component's content so that two
// versions can be compared from their manifests alone, without their chunks.
type Summary struct {
	Version int `json:"v"`
	// Tables of a database component (PostgreSQL, MySQL), by name.
	Tables []TableSummary `json:"tables,omitempty"`
	// Schema is the database's schema as SQL (DDL), normalised so that two
	// captures of the same schema give the same text; empty when larger
	// than MaxSchemaText.
	Schema string `json:"schema,omitempty"`
	// SchemaDigest identifies Schema even when the text was not kept.
	SchemaDigest string `json:"schemaDigest,omitempty"`
	// Keys of a Redis component: how many per database and type.
	Keys []KeyCount `json:"keys,omitempty"`
}

// TableSummary is one table's data in a database component.
type TableSummary struct {
	Name   string `json:"name"`   // schema-qualified as the dump names it
	Rows   int64  `json:"rows"`   // rows in the dump
	Bytes  int64  `json:"bytes"`  // bytes of the table's data in the dump
	Digest string `json:"digest"` // sha256 of the table's data in the dump
}

// KeyCount is how many keys of one type a Redis database holds.
type KeyCount struct {
	DB    int    `json:"db"`
	Type  string `json:"type"`
	Count int64  `json:"count"`
}

// SetSummary stores s in meta (allocating it when nil) and returns it.
func SetSummary(meta map[string]string, s Summary) (map[string]string, error) {
	s.Version = SummaryVersion
	b, err := json.Marshal(s)
	if err != nil {
		return meta, fmt.Errorf("encoding component summary: %w", err)
	}
	if meta == nil {
		meta = map[string]string{}
	}
	meta[MetaSummary] = string(b)
	return meta, nil
}

// ComponentSummary reads the summary a capture recorded for c. ok is false
// when none was recorded (an older capture, or a kind without one).
func ComponentSummary(c *Component) (s Summary, ok bool, err error) {
	raw, ok := c.Meta[MetaSummary]
	if !ok {
		return Summary{}, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Summary{}, false, fmt.Errorf("%w: component %q: meta %s: %v", ErrInvalidManifest, truncate(c.Name), MetaSummary, err)
	}
	if s.Version != SummaryVersion {
		return Summary{}, false, fmt.Errorf("%w: component %q: summary version %d; this build reads %d, upgrade to compare it",
			ErrUnsupportedSchema, truncate(c.Name), s.Version, SummaryVersion)
	}
	return s, true, nil
}
