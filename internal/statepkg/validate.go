package statepkg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// Encode returns the canonical JSON encoding of the manifest: the same
// manifest always encodes to the same bytes, so ManifestDigest of the result
// is the version's identity. Times are written in UTC and absent lists as
// []. Encode refuses a manifest that DecodeManifest would reject.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.CreatedAt = c.CreatedAt.UTC()
	c.Components = make([]Component, len(m.Components))
	for i, comp := range m.Components {
		if comp.Chunks == nil {
			comp.Chunks = []Chunk{}
		}
		if len(comp.Files) > 0 {
			files := make([]FileEntry, len(comp.Files))
			for j, f := range comp.Files {
				f.MTime = f.MTime.UTC()
				files[j] = f
			}
			comp.Files = files
		}
		c.Components[i] = comp
	}
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, which is what makes the output canonical.
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return b, nil
}

// ManifestDigest returns the digest of an encoded manifest: the identity of
// the version it describes.
func ManifestDigest(encoded []byte) string { return DigestBytes(encoded) }

// DecodeManifest parses and validates an encoded manifest. A schemaVersion
// other than SchemaVersion gives an error wrapping ErrUnsupportedSchema; any
// other problem an error wrapping ErrInvalidManifest that says what is wrong
// and where.
func DecodeManifest(b []byte) (*Manifest, error) {
	// The common case in one pass: a manifest of this schema (a file index
	// of many thousand entries makes a second parse cost).
	if fm, ok := fastDecodeManifest(b); ok && fm.SchemaVersion == SchemaVersion {
		if err := fm.Validate(); err != nil {
			return nil, err
		}
		return fm, nil
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err == nil && m.SchemaVersion == SchemaVersion {
		if err := m.Validate(); err != nil {
			return nil, err
		}
		return &m, nil
	}
	// Otherwise read the schema version on its own, so a manifest from a
	// newer build is reported as such rather than as whatever field it
	// changed.
	var probe struct {
		SchemaVersion json.RawMessage `json:"schemaVersion"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidManifest, err)
	}
	if !bytes.Equal(bytes.TrimSpace(probe.SchemaVersion), []byte("1")) {
		v := string(probe.SchemaVersion)
		if v == "" {
			v = "missing"
		}
		return nil, fmt.Errorf("%w: schemaVersion %s; this build reads %d, upgrade to read newer packages",
			ErrUnsupportedSchema, truncate(v), SchemaVersion)
	}
	m = Manifest{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest's internal consistency: schema version,
// component names and kinds, contiguous chunk lists, digests and file index
// paths.
func (m *Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%w: schemaVersion %d; this build reads %d", ErrUnsupportedSchema, m.SchemaVersion, SchemaVersion)
	}
	if m.State != "" {
		project, name, ok := strings.Cut(m.State, "/")
		if !ok || ValidateName(project) != nil || ValidateName(name) != nil {
			return fmt.Errorf("%w: state %q must be project/name with lowercase DNS-label names", ErrInvalidManifest, truncate(m.State))
		}
	}
	seen := make(map[string]int, len(m.Components))
	for i := range m.Components {
		c := &m.Components[i]
		if err := ValidateName(c.Name); err != nil {
			return fmt.Errorf("%w: component %d: name: %v", ErrInvalidManifest, i, err)
		}
		if j, dup := seen[c.Name]; dup {
			return fmt.Errorf("%w: components %d and %d are both named %q", ErrInvalidManifest, j, i, c.Name)
		}
		seen[c.Name] = i
		if err := c.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// KnownKind reports whether k is a component kind this build understands.
func KnownKind(k Kind) bool {
	switch k {
	case KindPostgres, KindMySQL, KindRedis, KindVolume, KindKubernetes, KindScript, KindOpenSearch:
		return true
	}
	return false
}

// Validate checks one component: kind, digests, that its chunks cover
// [0, Size) contiguously, and its file index.
func (c *Component) Validate() error {
	where := fmt.Sprintf("component %q", truncate(c.Name))
	if !KnownKind(c.Kind) {
		return fmt.Errorf("%w: %s: unknown kind %q (known: postgres, mysql, redis, volume, kubernetes, script, opensearch)",
			ErrInvalidManifest, where, truncate(string(c.Kind)))
	}
	if c.Size < 0 {
		return fmt.Errorf("%w: %s: negative size %d", ErrInvalidManifest, where, c.Size)
	}
	if _, err := ParseDigest(c.Digest); err != nil {
		return fmt.Errorf("%w: %s: digest: %v", ErrInvalidManifest, where, err)
	}
	var off int64
	for i, ch := range c.Chunks {
		if _, err := ParseDigest(ch.Digest); err != nil {
			return fmt.Errorf("%w: %s: chunk %d: digest: %v", ErrInvalidManifest, where, i, err)
		}
		if ch.Offset != off {
			return fmt.Errorf("%w: %s: chunk %d (%s): offset %d, want %d (chunks must be contiguous from 0)",
				ErrInvalidManifest, where, i, ch.Digest, ch.Offset, off)
		}
		if ch.Size <= 0 || ch.Size > MaxChunkSize {
			return fmt.Errorf("%w: %s: chunk %d (%s): size %d out of range 1..%d",
				ErrInvalidManifest, where, i, ch.Digest, ch.Size, MaxChunkSize)
		}
		if ch.StoredSize < 0 {
			return fmt.Errorf("%w: %s: chunk %d (%s): negative storedSize", ErrInvalidManifest, where, i, ch.Digest)
		}
		off += ch.Size // cannot overflow: bounded by len(Chunks)*MaxChunkSize
	}
	if off != c.Size {
		return fmt.Errorf("%w: %s: chunks add up to %d bytes, size is %d", ErrInvalidManifest, where, off, c.Size)
	}
	if len(c.Files) > 0 && c.Kind != KindVolume {
		return fmt.Errorf("%w: %s: only volume components carry a file index", ErrInvalidManifest, where)
	}
	paths := make(map[string]struct{}, len(c.Files))
	for i := range c.Files {
		f := &c.Files[i]
		if err := f.validate(c.Size); err != nil {
			return fmt.Errorf("%w: %s: file %d (%q): %v", ErrInvalidManifest, where, i, truncate(f.Path), err)
		}
		if _, dup := paths[f.Path]; dup {
			return fmt.Errorf("%w: %s: file %q listed twice", ErrInvalidManifest, where, truncate(f.Path))
		}
		paths[f.Path] = struct{}{}
	}
	return nil
}

// validatePath checks that p is a slash-separated, relative, cleaned path
// that stays inside the volume.
func validatePath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("empty path")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path contains a NUL byte")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path must be relative")
	case path.Clean(p) != p:
		return fmt.Errorf("path must be clean (no //, ./ or trailing /)")
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path must not leave the volume")
	}
	return nil
}

func (f *FileEntry) validate(streamSize int64) error {
	if err := validatePath(f.Path); err != nil {
		return err
	}
	switch f.Type {
	case FileRegular:
		if f.Size < 0 || f.DataOffset < 0 || f.DataOffset > streamSize || f.Size > streamSize-f.DataOffset {
			return fmt.Errorf("data range [%d, +%d) outside the %d-byte stream", f.DataOffset, f.Size, streamSize)
		}
		if f.SHA256 != "" && !isLowerHex(f.SHA256, 64) {
			return fmt.Errorf("sha256 must be 64 lowercase hex digits")
		}
	case FileDir:
	case FileSymlink:
		if f.Linkname == "" || strings.ContainsRune(f.Linkname, 0) {
			return fmt.Errorf("symlink needs a target")
		}
	case FileHardlink:
		if err := validatePath(f.Linkname); err != nil {
			return fmt.Errorf("hardlink source: %v", err)
		}
	default:
		return fmt.Errorf("unknown type %q (known: file, dir, symlink, hardlink)", truncate(f.Type))
	}
	if f.Type != FileRegular && (f.Size != 0 || f.DataOffset != 0 || f.SHA256 != "") {
		return fmt.Errorf("only regular files have size, dataOffset or sha256")
	}
	if f.Mode&^0o7777 != 0 {
		return fmt.Errorf("mode %#o has bits beyond permission, setuid, setgid and sticky", f.Mode)
	}
	if f.UID < 0 || f.GID < 0 {
		return fmt.Errorf("negative uid or gid")
	}
	return nil
}
