package statepkg

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// CandidatePrefix marks a candidate version's tag. Promoting a candidate
// drops it.
const CandidatePrefix = "[cand]-"

// Tag expressions with a special meaning.
const (
	ExprLatest       = "@latest"        // newest non-candidate
	ExprCandidate    = "@candidate"     // newest candidate
	ExprNewCandidate = "@new-candidate" // writes only: a fresh random candidate tag
	ExprRandom       = "@random"        // writes only: a fresh random tag
)

// Length limits of names and tags.
const (
	MaxNameLen = 63
	MaxTagLen  = 128 // not counting CandidatePrefix
)

// Ref names a version of a named state: project/state plus either a tag
// expression (Tag) or an exact manifest digest (Digest).
type Ref struct {
	Project string
	State   string
	Tag     string // a tag expression; "" when Digest is set
	Digest  string // "sha256:<hex>" for project/state@sha256:<hex>
}

// ParseRef parses "project/state" (meaning project/state:@latest),
// "project/state:TAG-EXPRESSION" or "project/state@sha256:<hex>".
func ParseRef(s string) (Ref, error) {
	project, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Ref{}, fmt.Errorf("%w: %q: want project/state, project/state:TAG or project/state@sha256:DIGEST", ErrInvalidRef, truncate(s))
	}
	if err := ValidateName(project); err != nil {
		return Ref{}, fmt.Errorf("reference %q: project: %w", truncate(s), err)
	}
	ref := Ref{Project: project, State: rest, Tag: ExprLatest}
	if i := strings.IndexAny(rest, ":@"); i >= 0 {
		ref.State = rest[:i]
		if rest[i] == '@' {
			ref.Tag, ref.Digest = "", rest[i+1:]
			if _, err := ParseDigest(ref.Digest); err != nil {
				return Ref{}, fmt.Errorf("reference %q: %w", truncate(s), err)
			}
		} else {
			ref.Tag = rest[i+1:]
			if _, err := ParseTagExpr(ref.Tag); err != nil {
				return Ref{}, fmt.Errorf("reference %q: %w", truncate(s), err)
			}
		}
	}
	if err := ValidateName(ref.State); err != nil {
		return Ref{}, fmt.Errorf("reference %q: state: %w", truncate(s), err)
	}
	return ref, nil
}

// String formats the reference so that ParseRef gives it back.
func (r Ref) String() string {
	if r.Digest != "" && r.Tag == "" {
		return r.Project + "/" + r.State + "@" + r.Digest
	}
	tag := r.Tag
	if tag == "" {
		tag = ExprLatest
	}
	return r.Project + "/" + r.State + ":" + tag
}

// StateName returns "project/state".
func (r Ref) StateName() string { return r.Project + "/" + r.State }

// Expr returns the reference's tag expression (TagDigest for a digest
// reference).
func (r Ref) Expr() (TagExpr, error) {
	if r.Digest != "" && r.Tag == "" {
		return TagExpr{Kind: TagDigest, Literal: r.Digest}, nil
	}
	if r.Tag == "" {
		return TagExpr{Kind: TagLatest}, nil
	}
	return ParseTagExpr(r.Tag)
}

// TagKind says what a tag expression selects.
type TagKind int

// Kinds of tag expression.
const (
	TagLatest       TagKind = iota // @latest
	TagCandidate                   // @candidate
	TagNewCandidate                // @new-candidate (writes only)
	TagRandom                      // @random (writes only)
	TagLiteral                     // a tag, possibly with the [cand]- prefix
	TagDigest                      // sha256:<hex>
)

func (k TagKind) String() string {
	switch k {
	case TagLatest:
		return "latest"
	case TagCandidate:
		return "candidate"
	case TagNewCandidate:
		return "new-candidate"
	case TagRandom:
		return "random"
	case TagLiteral:
		return "literal"
	case TagDigest:
		return "digest"
	}
	return fmt.Sprintf("TagKind(%d)", int(k))
}

// TagExpr is a parsed tag expression. Literal holds the tag for TagLiteral
// and the "sha256:<hex>" digest for TagDigest.
type TagExpr struct {
	Kind    TagKind
	Literal string
}

// ParseTagExpr parses @latest, @candidate, @new-candidate, @random,
// sha256:<hex> or a literal tag.
func ParseTagExpr(s string) (TagExpr, error) {
	switch s {
	case ExprLatest:
		return TagExpr{Kind: TagLatest}, nil
	case ExprCandidate:
		return TagExpr{Kind: TagCandidate}, nil
	case ExprNewCandidate:
		return TagExpr{Kind: TagNewCandidate}, nil
	case ExprRandom:
		return TagExpr{Kind: TagRandom}, nil
	}
	if strings.HasPrefix(s, "@") {
		return TagExpr{}, fmt.Errorf("%w: unknown tag expression %q (known: @latest, @candidate, @new-candidate, @random)", ErrInvalidRef, truncate(s))
	}
	if strings.HasPrefix(s, DigestPrefix) {
		if _, err := ParseDigest(s); err != nil {
			return TagExpr{}, err
		}
		return TagExpr{Kind: TagDigest, Literal: s}, nil
	}
	if err := ValidateTag(s); err != nil {
		return TagExpr{}, err
	}
	return TagExpr{Kind: TagLiteral, Literal: s}, nil
}

// String formats the expression so that ParseTagExpr gives it back.
func (e TagExpr) String() string {
	switch e.Kind {
	case TagLatest:
		return ExprLatest
	case TagCandidate:
		return ExprCandidate
	case TagNewCandidate:
		return ExprNewCandidate
	case TagRandom:
		return ExprRandom
	}
	return e.Literal
}

// IsWriteOnly reports whether the expression only makes sense when creating
// a version (@new-candidate, @random).
func (e TagExpr) IsWriteOnly() bool {
	return e.Kind == TagNewCandidate || e.Kind == TagRandom
}

// IsCandidate reports whether tag carries the candidate prefix.
func IsCandidate(tag string) bool { return strings.HasPrefix(tag, CandidatePrefix) }

// ValidateName checks a project or state name: a lowercase DNS label of 1-63
// characters [a-z0-9-] that starts and ends with a letter or digit.
func ValidateName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("%w: name %q must be 1-%d characters", ErrInvalidRef, truncate(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return fmt.Errorf("%w: name %q must be a lowercase DNS label: a-z, 0-9 and '-', starting and ending with a letter or digit", ErrInvalidRef, truncate(s))
		}
	}
	return nil
}

// ValidateTag checks a literal tag: 1-128 characters of [A-Za-z0-9_.-],
// optionally after the [cand]- prefix. "." and ".." are refused because tags
// appear as URL path segments.
func ValidateTag(tag string) error {
	body := strings.TrimPrefix(tag, CandidatePrefix)
	if len(body) == 0 || len(body) > MaxTagLen {
		return fmt.Errorf("%w: tag %q must be 1-%d characters after the optional %q prefix", ErrInvalidRef, truncate(tag), MaxTagLen, CandidatePrefix)
	}
	if body == "." || body == ".." {
		return fmt.Errorf("%w: tag %q is not allowed", ErrInvalidRef, tag)
	}
	for i := 0; i < len(body); i++ {
		if !isTagByte(body[i]) {
			return fmt.Errorf("%w: tag %q may contain only A-Z, a-z, 0-9, '_', '.' and '-' (after the optional %q prefix)", ErrInvalidRef, truncate(tag), CandidatePrefix)
		}
	}
	return nil
}

func isTagByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// PromoteTag returns the tag a candidate gets when promoted: tag without the
// [cand]- prefix.
func PromoteTag(tag string) (string, error) {
	if err := ValidateTag(tag); err != nil {
		return "", err
	}
	body, ok := strings.CutPrefix(tag, CandidatePrefix)
	if !ok {
		return "", fmt.Errorf("%w: tag %q is not a candidate (no %q prefix)", ErrInvalidRef, tag, CandidatePrefix)
	}
	return body, nil
}

// Word lists for random tags; short, unambiguous and inoffensive.
var (
	tagAdjectives = [...]string{
		"amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
		"fancy", "fierce", "gentle", "glad", "golden", "grand", "happy", "hidden", "jolly", "keen",
		"kind", "lively", "lucky", "merry", "mighty", "misty", "noble", "odd", "proud", "quick",
		"quiet", "rapid", "shiny", "silent", "silver", "sleek", "smart", "snowy", "solid", "sunny",
		"swift", "tidy", "vivid", "warm", "wild", "wise", "witty", "young", "zesty", "zen",
	}
	tagNouns = [...]string{
		"badger", "bear", "beaver", "bison", "cobra", "condor", "crane", "dingo", "dolphin", "eagle",
		"falcon", "ferret", "finch", "fox", "gecko", "heron", "ibis", "jaguar", "koala", "lemur",
		"lynx", "marmot", "mole", "moose", "newt", "ocelot", "orca", "otter", "owl", "panda",
		"parrot", "puffin", "quail", "rabbit", "raven", "seal", "shark", "sloth", "swan", "tapir",
		"tiger", "toucan", "turtle", "walrus", "weasel", "whale", "wolf", "wombat", "yak", "zebra",
	}
)

// maxRandomTagAttempts bounds the search for a free word tag before falling
// back to a long hex tag (50*50*10000 word tags make that practically never).
const maxRandomTagAttempts = 64

// NewRandomTag returns a fresh tag like "brave-otter-0421" (with the [cand]-
// prefix when candidate is set) for which exists returns false. A candidate
// tag is also checked without its prefix, so promoting it later cannot
// collide. Randomness comes from r, or crypto/rand when r is nil; exists may
// be nil.
func NewRandomTag(r io.Reader, candidate bool, exists func(string) bool) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	taken := func(body string) bool {
		if exists == nil {
			return false
		}
		return exists(body) || exists(CandidatePrefix+body)
	}
	prefix := ""
	if candidate {
		prefix = CandidatePrefix
	}
	var buf [8]byte
	for range maxRandomTagAttempts {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("generating random tag: %w", err)
		}
		// Modulo bias over a 64-bit value is negligible for these small ranges.
		n := binary.BigEndian.Uint64(buf[:])
		adj := tagAdjectives[n%uint64(len(tagAdjectives))]
		n /= uint64(len(tagAdjectives))
		noun := tagNouns[n%uint64(len(tagNouns))]
		n /= uint64(len(tagNouns))
		body := fmt.Sprintf("%s-%s-%04d", adj, noun, n%10000)
		if !taken(body) {
			return prefix + body, nil
		}
	}
	for range maxRandomTagAttempts {
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("generating random tag: %w", err)
		}
		body := hex.EncodeToString(b[:])
		if !taken(body) {
			return prefix + body, nil
		}
	}
	return "", fmt.Errorf("no free random tag after %d attempts: the random source or the exists function looks broken", 2*maxRandomTagAttempts)
}

// TagInfo is what Resolve needs to know about one version of a state.
type TagInfo struct {
	Tag       string
	Digest    string
	CreatedAt time.Time
}

// Resolve picks the version a read expression selects: @latest the newest
// non-candidate, @candidate the newest candidate, a literal the version with
// that tag, a digest the newest version with that digest. Ties on CreatedAt
// go to the greater tag, so the answer does not depend on the slice's order.
// Nothing matching gives an error wrapping ErrNoSuchVersion; a write-only
// expression one wrapping ErrInvalidRef.
func Resolve(expr TagExpr, versions []TagInfo) (TagInfo, error) {
	var match func(TagInfo) bool
	switch expr.Kind {
	case TagLatest:
		match = func(v TagInfo) bool { return !IsCandidate(v.Tag) }
	case TagCandidate:
		match = func(v TagInfo) bool { return IsCandidate(v.Tag) }
	case TagLiteral:
		match = func(v TagInfo) bool { return v.Tag == expr.Literal }
	case TagDigest:
		match = func(v TagInfo) bool { return v.Digest == expr.Literal }
	case TagNewCandidate, TagRandom:
		return TagInfo{}, fmt.Errorf("%w: %s names a new version and can only be used when creating one", ErrInvalidRef, expr)
	default:
		return TagInfo{}, fmt.Errorf("%w: unknown tag expression kind %v", ErrInvalidRef, expr.Kind)
	}
	var best TagInfo
	found := false
	for _, v := range versions {
		if !match(v) {
			continue
		}
		if !found || v.CreatedAt.After(best.CreatedAt) || (v.CreatedAt.Equal(best.CreatedAt) && v.Tag > best.Tag) {
			best, found = v, true
		}
	}
	if !found {
		return TagInfo{}, fmt.Errorf("%w: nothing matches %s", ErrNoSuchVersion, expr)
	}
	return best, nil
}
