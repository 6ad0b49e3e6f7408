package statepkg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testHex = strings.Repeat("ab", 32)

func TestParseRef_AcceptsGrammar(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		str  string
	}{
		{"shop/seed", Ref{"shop", "seed", "@latest", ""}, "shop/seed:@latest"},
		{"shop/seed:v1.2", Ref{"shop", "seed", "v1.2", ""}, "shop/seed:v1.2"},
		{"shop/seed:@latest", Ref{"shop", "seed", "@latest", ""}, "shop/seed:@latest"},
		{"shop/seed:@candidate", Ref{"shop", "seed", "@candidate", ""}, "shop/seed:@candidate"},
		{"shop/seed:@new-candidate", Ref{"shop", "seed", "@new-candidate", ""}, "shop/seed:@new-candidate"},
		{"shop/seed:@random", Ref{"shop", "seed", "@random", ""}, "shop/seed:@random"},
		{"shop/seed:[cand]-brave-otter-0001", Ref{"shop", "seed", "[cand]-brave-otter-0001", ""}, "shop/seed:[cand]-brave-otter-0001"},
		{"shop/seed@sha256:" + testHex, Ref{"shop", "seed", "", "sha256:" + testHex}, "shop/seed@sha256:" + testHex},
		{"shop/seed:sha256:" + testHex, Ref{"shop", "seed", "sha256:" + testHex, ""}, "shop/seed:sha256:" + testHex},
		{"a-1/0-b:V_1.0-rc.1", Ref{"a-1", "0-b", "V_1.0-rc.1", ""}, "a-1/0-b:V_1.0-rc.1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if err != nil {
				t.Fatalf("ParseRef: %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseRef = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Fatalf("String = %q, want %q", got.String(), tt.str)
			}
			again, err := ParseRef(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("String does not round-trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseRef_RejectsMalformed(t *testing.T) {
	for _, in := range []string{
		"", "shop", "/seed", "shop/", "Shop/seed", "shop/Seed", "shop/seed/x", "shop/-seed", "shop/seed-",
		"shop/seed:", "shop/seed@", "shop/seed@sha256:abc", "shop/seed@" + testHex, "shop/seed:@newest",
		"shop/seed:v1@sha256:" + testHex, "shop/seed:v 1", "shop/seed:[cand]-", "shop/seed:..", "shop/se_ed",
		"shop/" + strings.Repeat("a", 64), "shop/seed:" + strings.Repeat("a", 129), "shop/seed:sha256:" + strings.ToUpper(testHex),
	} {
		if r, err := ParseRef(in); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseRef(%q) = %+v, %v; want ErrInvalidRef", in, r, err)
		}
	}
}

func TestParseTagExpr_Kinds(t *testing.T) {
	tests := []struct {
		in        string
		kind      TagKind
		writeOnly bool
	}{
		{"@latest", TagLatest, false},
		{"@candidate", TagCandidate, false},
		{"@new-candidate", TagNewCandidate, true},
		{"@random", TagRandom, true},
		{"v1", TagLiteral, false},
		{"[cand]-v1", TagLiteral, false},
		{"sha256:" + testHex, TagDigest, false},
		{strings.Repeat("x", 128), TagLiteral, false},
		{"[cand]-" + strings.Repeat("x", 128), TagLiteral, false},
	}
	for _, tt := range tests {
		e, err := ParseTagExpr(tt.in)
		if err != nil {
			t.Fatalf("ParseTagExpr(%q): %v", tt.in, err)
		}
		if e.Kind != tt.kind || e.IsWriteOnly() != tt.writeOnly || e.String() != tt.in {
			t.Errorf("ParseTagExpr(%q) = %+v (writeOnly %v, String %q)", tt.in, e, e.IsWriteOnly(), e.String())
		}
	}
	for _, in := range []string{"", "@", "@LATEST", "[cand]", "[cand]-", "[CAND]-x", "a/b", "sha256:", "x:y", ".", "..", strings.Repeat("x", 129)} {
		if _, err := ParseTagExpr(in); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseTagExpr(%q) error = %v, want ErrInvalidRef", in, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "0", "shop", "my-shop-2", strings.Repeat("a", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", "é", strings.Repeat("a", 64)} {
		if err := ValidateName(bad); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidRef", bad, err)
		}
	}
}

func TestPromoteTag_DropsPrefix(t *testing.T) {
	if got, err := PromoteTag("[cand]-v1.2"); err != nil || got != "v1.2" {
		t.Fatalf("PromoteTag = %q, %v", got, err)
	}
	for _, bad := range []string{"v1.2", "[cand]-", "[cand]-a b"} {
		if _, err := PromoteTag(bad); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("PromoteTag(%q) = %v, want ErrInvalidRef", bad, err)
		}
	}
	if !IsCandidate("[cand]-x") || IsCandidate("x") {
		t.Fatal("IsCandidate")
	}
}

func TestNewRandomTag_NeverCollides(t *testing.T) {
	existing := map[string]bool{}
	exists := func(s string) bool { return existing[s] }
	for i := range 2000 {
		candidate := i%2 == 0
		tag, err := NewRandomTag(nil, candidate, exists)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateTag(tag); err != nil {
			t.Fatalf("generated invalid tag %q: %v", tag, err)
		}
		if IsCandidate(tag) != candidate {
			t.Fatalf("tag %q: candidate = %v, want %v", tag, IsCandidate(tag), candidate)
		}
		body := strings.TrimPrefix(tag, CandidatePrefix)
		if existing[body] || existing[CandidatePrefix+body] {
			t.Fatalf("tag %q collides", tag)
		}
		existing[tag] = true
	}
}

func TestNewRandomTag_AvoidsTakenTagsWithFixedRandomness(t *testing.T) {
	// A source that repeats the same bytes forever yields the same word tag
	// every time; once that is taken the generator must still find a free one
	// or fail cleanly rather than return a taken tag.
	first, err := NewRandomTag(bytes.NewReader(make([]byte, 1<<16)), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewRandomTag(bytes.NewReader(make([]byte, 1<<16)), false, func(s string) bool { return s == first || len(s) == 32 })
	if err == nil {
		t.Fatal("expected an error when every candidate is taken")
	}
	if _, err := NewRandomTag(bytes.NewReader(nil), false, nil); err == nil {
		t.Fatal("expected an error from an empty random source")
	}
}

func TestResolve_PicksVersion(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := func(s string) string { return DigestBytes([]byte(s)) }
	versions := []TagInfo{
		{"v1", d("1"), t0},
		{"[cand]-c1", d("c1"), t0.Add(time.Hour)},
		{"v2", d("2"), t0.Add(2 * time.Hour)},
		{"[cand]-c2", d("c2"), t0.Add(3 * time.Hour)},
		{"v2-again", d("2"), t0.Add(time.Minute)},
	}
	tests := []struct {
		expr string
		want string
	}{
		{"@latest", "v2"},
		{"@candidate", "[cand]-c2"},
		{"v1", "v1"},
		{"[cand]-c1", "[cand]-c1"},
		{d("2"), "v2"},
	}
	for _, tt := range tests {
		e, err := ParseTagExpr(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Resolve(e, versions)
		if err != nil || got.Tag != tt.want {
			t.Errorf("Resolve(%s) = %+v, %v; want %s", tt.expr, got, err, tt.want)
		}
	}
	for _, expr := range []string{"v3", d("3")} {
		e, _ := ParseTagExpr(expr)
		if _, err := Resolve(e, versions); !errors.Is(err, ErrNoSuchVersion) {
			t.Errorf("Resolve(%s) error = %v, want ErrNoSuchVersion", expr, err)
		}
	}
	if _, err := Resolve(TagExpr{Kind: TagLatest}, versions[1:2]); !errors.Is(err, ErrNoSuchVersion) {
		t.Errorf("@latest with only candidates: %v", err)
	}
	if _, err := Resolve(TagExpr{Kind: TagCandidate}, nil); !errors.Is(err, ErrNoSuchVersion) {
		t.Errorf("@candidate of nothing: %v", err)
	}
	if _, err := Resolve(TagExpr{Kind: TagRandom}, versions); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("@random: %v", err)
	}
	// Equal times: the answer must not depend on order.
	tie := []TagInfo{{"a", d("a"), t0}, {"b", d("b"), t0}}
	r1, _ := Resolve(TagExpr{Kind: TagLatest}, tie)
	r2, _ := Resolve(TagExpr{Kind: TagLatest}, []TagInfo{tie[1], tie[0]})
	if r1 != r2 {
		t.Errorf("tie broken by order: %v vs %v", r1, r2)
	}
}
