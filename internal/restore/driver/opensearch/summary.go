package opensearch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Manifest meta keys of a captured component, beyond "indexes" and
// "documents": what a later diff of two versions compares without
// reading their data.
const (
	// MetaIndexDocs lists each index's document count: "name:count,...".
	MetaIndexDocs = "indexDocs"
	// MetaMappings lists each index's mapping digest: "name:hex,...", the
	// first 16 hex digits of the SHA-256 of its mappings as canonical JSON
	// (keys sorted), so equal mappings have equal digests across servers.
	MetaMappings = "mappings"
)

// summary collects the per-index meta of a capture, in stream order.
type summary struct {
	names    []string
	docs     []string
	mappings []string
}

func (s *summary) index(h *indexHeader) {
	s.names = append(s.names, h.Name)
	s.mappings = append(s.mappings, h.Name+":"+mappingDigest(h.Mappings))
}

func (s *summary) end(e *endIndex) {
	s.docs = append(s.docs, e.Name+":"+strconv.FormatInt(e.Docs, 10))
}

func (s *summary) meta(total int64) map[string]string {
	return map[string]string{
		"indexes":     strings.Join(s.names, ","),
		"documents":   strconv.FormatInt(total, 10),
		MetaIndexDocs: strings.Join(s.docs, ","),
		MetaMappings:  strings.Join(s.mappings, ","),
	}
}

// mappingDigest is the short digest of mappings as canonical JSON:
// decoded and encoded again, which sorts every object's keys.
func mappingDigest(m map[string]json.RawMessage) string {
	var v any
	b, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err == nil {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return "" // mappings came from JSON; unreachable
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ParseIndexMeta reads a MetaIndexDocs or MetaMappings value into a map
// (index name -> value); index names cannot hold ',' or ':'.
func ParseIndexMeta(v string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		if k, val, ok := strings.Cut(kv, ":"); ok && k != "" {
			out[k] = val
		}
	}
	return out
}
