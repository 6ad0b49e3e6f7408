package statepkg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// DigestPrefix is the algorithm prefix of every digest in a package.
const DigestPrefix = "sha256:"

// DigestBytes returns the digest of b as "sha256:<hex>".
func DigestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// ParseDigest checks that s is "sha256:" followed by 64 lowercase hex digits
// and returns the hex part.
func ParseDigest(s string) (string, error) {
	h, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok {
		return "", fmt.Errorf("%w: digest %q must start with %q", ErrInvalidRef, truncate(s), DigestPrefix)
	}
	if !isLowerHex(h, sha256.Size*2) {
		return "", fmt.Errorf("%w: digest %q must be %q followed by 64 lowercase hex digits", ErrInvalidRef, truncate(s), DigestPrefix)
	}
	return h, nil
}

// isLowerHex reports whether s is exactly n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	// A table lookup per byte: a manifest holds 100,000 digests and more,
	// and the branchy range test was most of checking them.
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

var lowerHex = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
}

// truncate shortens untrusted input before it is quoted in an error message.
func truncate(s string) string {
	const maxLen = 100
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}
