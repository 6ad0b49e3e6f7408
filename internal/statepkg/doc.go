// Package statepkg is the package format of a named state version: a JSON
// manifest plus content-addressed, zstd-compressed chunks produced by
// content-defined chunking, and the grammar of state references and tag
// expressions shared by server, client, provider and plugin.
//
// Writing: WriteComponent turns a component's byte stream into chunks in a
// ChunkStore and fills in the component's manifest entry. Reading:
// ReadComponent, ReadRange and OpenComponent turn them back into bytes,
// checking every chunk against its sha256 before any of its bytes are
// handed on. A Manifest lists the components; Encode gives its canonical
// JSON and ManifestDigest the version's identity.
//
// Chunk sizes depart from DESIGN.md's 1-4 MiB average: the defaults (16 KiB
// min, 64 KiB average, 256 KiB max) are what meet the dedup goal; see
// DefaultAvgSize.
package statepkg
