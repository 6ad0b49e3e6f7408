package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// BoundedName is db+suffix within max bytes (a database's identifier
// limit). A name too long is cut on a character boundary and gets 8 hex
// digits of the full name's hash before the suffix, so two databases whose
// names differ only past the cut never share a staging or previous copy
// (an apply to one would drop the other's).
func BoundedName(db, suffix string, limit int) string {
	if len(db)+len(suffix) <= limit {
		return db + suffix
	}
	sum := sha256.Sum256([]byte(db))
	tag := "_" + hex.EncodeToString(sum[:4])
	cut := max(limit-len(suffix)-len(tag), 0)
	for cut > 0 && !utf8.RuneStart(db[cut]) {
		cut--
	}
	return db[:cut] + tag + suffix
}
