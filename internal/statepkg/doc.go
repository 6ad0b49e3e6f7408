// Package statepkg is the package format of a named state version: a JSON
// manifest plus content-addressed, zstd-compressed chunks produced by
// content-defined chunking, and the grammar of state references and tag
// expressions shared by server, client, provider and plugin.
package statepkg
