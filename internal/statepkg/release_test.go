package statepkg

import (
	"reflect"
	"testing"
	"time"
)

func TestOverriddenKeys_AreTheLeavesTheUserChanged(t *testing.T) {
	defaults := map[string]any{
		"replicas": float64(1),
		"image":    map[string]any{"repository": "shop", "tag": "1.0"},
		"postgres": map[string]any{"password": "", "port": float64(5432)},
		"hosts":    []any{"a"},
	}
	values := map[string]any{
		"replicas": float64(1), // same as the default: not an override
		"image":    map[string]any{"tag": "1.1"},
		"postgres": map[string]any{"password": "s3cret"},
		"hosts":    []any{"a", "b"},
		"extra":    map[string]any{"debug": true},
	}
	want := []string{"extra.debug", "hosts", "image.tag", "postgres.password"}
	if got := OverriddenKeys(values, defaults); !reflect.DeepEqual(got, want) {
		t.Errorf("OverriddenKeys = %v, want %v", got, want)
	}
	if got := OverriddenKeys(nil, defaults); got != nil {
		t.Errorf("no values: %v, want none", got)
	}
}

func TestMaskedValues_HidesSecretLookingKeysOnly(t *testing.T) {
	in := map[string]any{
		"postgres": map[string]any{"password": "s3cret", "host": "db"},
		"auth":     map[string]any{"users": []any{"alice"}},
		"apiToken": "t0k",
		"replicas": float64(2),
	}
	got := MaskedValues(in)
	want := map[string]any{
		"postgres": map[string]any{"password": "***", "host": "db"},
		"auth":     map[string]any{"users": []any{"***"}},
		"apiToken": "***",
		"replicas": float64(2),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MaskedValues = %v, want %v", got, want)
	}
	if in["apiToken"] != "t0k" {
		t.Error("MaskedValues changed its input")
	}
}

// The release is part of the manifest's canonical encoding, so two
// captures differing only in values are different versions.
func TestManifest_ReleaseIsInTheDigest(t *testing.T) {
	m := &Manifest{SchemaVersion: SchemaVersion, State: "shop/seed", CreatedAt: time.Unix(0, 0), Components: []Component{}}
	plain, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m.Release = &ReleaseInfo{Name: "shop", Chart: ChartRef{Name: "shop", Version: "0.1.0"},
		Values: map[string]any{"image": map[string]any{"tag": "1.1"}}, Overridden: []string{"image.tag"}}
	withRel, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if ManifestDigest(plain) == ManifestDigest(withRel) {
		t.Fatal("the release does not change the digest")
	}
	back, err := DecodeManifest(withRel)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(withRel) {
		t.Errorf("decode+encode changed the manifest:\n%s\n%s", withRel, again)
	}
	if back.Release == nil {
		t.Fatal("the decoded manifest lost its release")
	}
	if img, _ := back.Release.Values["image"].(map[string]any); img["tag"] != "1.1" {
		t.Errorf("decoded release %+v", back.Release)
	}
}
