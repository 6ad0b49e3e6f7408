package statepkg

import (
	"time"
)

// SchemaVersion is the only manifest schema this build reads and writes.
const SchemaVersion = 1

// Kind is the kind of service a component's data belongs to.
type Kind string

// Component kinds known to this build.
const (
	KindPostgres   Kind = "postgres"
	KindMySQL      Kind = "mysql"
	KindRedis      Kind = "redis"
	KindVolume     Kind = "volume"
	KindKubernetes Kind = "kubernetes"
	KindScript     Kind = "script"
	// KindOpenSearch is OpenSearch or Elasticsearch indexes.
	KindOpenSearch Kind = "opensearch"
)

// Manifest describes one immutable version of a named state. Its identity is
// the sha256 of its canonical encoding (see Encode and ManifestDigest).
type Manifest struct {
	SchemaVersion int         `json:"schemaVersion"`
	State         string      `json:"state,omitempty"` // "project/name"
	Revision      string      `json:"revision,omitempty"`
	Message       string      `json:"message,omitempty"`
	CreatedAt     time.Time   `json:"createdAt"`
	Components    []Component `json:"components"`
	// Release is the Helm release the version was captured from, when it
	// was: chart reference and values (Kerbi's values/default_values).
	Release *ReleaseInfo `json:"release,omitempty"`
}

// Component is one service's data inside a version: one logical byte stream
// split into chunks.
type Component struct {
	Name   string            `json:"name"`
	Kind   Kind              `json:"kind"`
	Format string            `json:"format"`          // e.g. "pg_dump-custom", "sql", "tar", "redis-dump", "rdb", "k8s-objects"
	Size   int64             `json:"size"`            // length of the uncompressed stream
	Digest string            `json:"digest"`          // "sha256:<hex>" of the whole uncompressed stream
	Chunks []Chunk           `json:"chunks"`          // in stream order, contiguous
	Files  []FileEntry       `json:"files,omitempty"` // volume components: the file index
	Meta   map[string]string `json:"meta,omitempty"`  // kind-specific: server version, ...
}

// Chunk is one content-defined piece of a component stream. Its Digest is the
// sha256 of the UNCOMPRESSED bytes; the store holds them zstd-compressed.
type Chunk struct {
	Digest     string `json:"digest"` // "sha256:<hex>"
	Offset     int64  `json:"offset"` // offset of the chunk in the component stream
	Size       int64  `json:"size"`   // uncompressed length
	StoredSize int64  `json:"storedSize,omitempty"`
}

// File types in a volume file index.
const (
	FileRegular  = "file"
	FileDir      = "dir"
	FileSymlink  = "symlink"
	FileHardlink = "hardlink"
)

// FileEntry is one entry of a volume component's file index. DataOffset and
// Size give the byte range of the file's content inside the component's tar
// stream, so an apply can fetch only the chunks covering changed files.
type FileEntry struct {
	Path       string    `json:"path"` // slash-separated, relative, cleaned
	Type       string    `json:"type"` // FileRegular, FileDir, FileSymlink, FileHardlink
	Mode       uint32    `json:"mode"` // permission bits (fs.FileMode.Perm plus setuid/setgid/sticky)
	UID        int       `json:"uid"`
	GID        int       `json:"gid"`
	Size       int64     `json:"size,omitempty"`
	MTime      time.Time `json:"mtime"`
	SHA256     string    `json:"sha256,omitempty"`   // hex, regular files only
	Linkname   string    `json:"linkname,omitempty"` // symlink target or hardlink source path
	DataOffset int64     `json:"dataOffset,omitempty"`
}
