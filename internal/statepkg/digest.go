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
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate shortens untrusted input before it is quoted in an error message.
func truncate(s string) string {
	const maxLen = 100
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}
