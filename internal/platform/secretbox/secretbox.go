// Package secretbox seals small secrets the platform keeps at rest (the
// defaults of sensitive script variables) with AES-256-GCM under a key from
// the server's configuration (UNIKUBE_SECRET_KEY or --secret-key-file).
//
// Each sealed value is bound to where it is kept (its "context", e.g.
// project/script/variable) as GCM's additional data, so a ciphertext copied
// into another script's row does not open there.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeyEnv is the environment variable holding the key.
const KeyEnv = "UNIKUBE_SECRET_KEY"

// prefix marks the format of a sealed value, so a later format can coexist.
const prefix = "v1:"

// ErrNoKey means a secret was to be sealed or opened but the server has no
// key configured.
var ErrNoKey = errors.New("the platform has no secret key: set " + KeyEnv + " (32 random bytes, base64: `openssl rand -base64 32`) or --secret-key-file")

// ErrOpen means a sealed value did not open: another key, or a value moved
// or altered.
var ErrOpen = errors.New("sealed value does not open with this key (the server's secret key changed, or the stored value was altered)")

// Box seals and opens values. The zero Box (or nil) has no key: Seal and
// Open return ErrNoKey.
type Box struct{ aead cipher.AEAD }

// ParseKey reads a 32-byte key given as base64 (standard or URL alphabet,
// padded or not) or as 64 hex digits. An empty key gives a Box without a
// key.
func ParseKey(s string) (*Box, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return &Box{}, nil
	}
	key, err := decodeKey(s)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Box{aead: aead}, nil
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("secret key is %d bytes: it must be 32 random bytes, base64 or hex (`openssl rand -base64 32`)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("secret key is neither base64 nor 64 hex digits: make one with `openssl rand -base64 32`")
}

// HasKey reports whether b can seal.
func (b *Box) HasKey() bool { return b != nil && b.aead != nil }

// Seal encrypts plain for context.
func (b *Box) Seal(plain, context string) (string, error) {
	if !b.HasKey() {
		return "", ErrNoKey
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: random nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(context))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the same context.
func (b *Box) Open(sealed, context string) (string, error) {
	if !b.HasKey() {
		return "", ErrNoKey
	}
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("%w: unknown format", ErrOpen)
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", fmt.Errorf("%w: malformed", ErrOpen)
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:n], data[n:], []byte(context))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
