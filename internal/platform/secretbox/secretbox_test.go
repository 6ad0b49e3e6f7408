package secretbox

import (
	"errors"
	"strings"
	"testing"
)

const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes

func TestBox_SealOpensOnlyInItsContextWithItsKey(t *testing.T) {
	b, err := ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal("hunter2", "shop/seed/PASSWORD")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed value shows the secret: %s", sealed)
	}
	if got, err := b.Open(sealed, "shop/seed/PASSWORD"); err != nil || got != "hunter2" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := b.Open(sealed, "other/seed/PASSWORD"); !errors.Is(err, ErrOpen) {
		t.Fatalf("open in another context: want ErrOpen, got %v", err)
	}
	other, _ := ParseKey(strings.Repeat("ab", 32))
	if _, err := other.Open(sealed, "shop/seed/PASSWORD"); !errors.Is(err, ErrOpen) {
		t.Fatalf("open with another key: want ErrOpen, got %v", err)
	}
	if _, err := b.Open("v1:!!", "shop/seed/PASSWORD"); !errors.Is(err, ErrOpen) {
		t.Fatalf("malformed: want ErrOpen, got %v", err)
	}
}

func TestParseKey_RefusesWrongSizesAndNoKeyRefusesToSeal(t *testing.T) {
	for _, k := range []string{"c2hvcnQ=", "not a key!", strings.Repeat("a", 63)} {
		if _, err := ParseKey(k); err == nil {
			t.Errorf("ParseKey(%q): want an error", k)
		}
	}
	none, err := ParseKey("")
	if err != nil || none.HasKey() {
		t.Fatalf("empty key: %v %v", none, err)
	}
	if _, err := none.Seal("x", "c"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without key: %v", err)
	}
}
