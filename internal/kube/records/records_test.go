package records

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestShrink_KeepsRecordUnderSecretLimit checks huge log tails are cut.
func TestShrink_KeepsRecordUnderSecretLimit(t *testing.T) {
	tail := make([]string, 50)
	for i := range tail {
		tail[i] = strings.Repeat("x", 30<<10)
	}
	r := &Record{Release: "r", Components: []Component{{Name: "db", LogTail: tail, Error: strings.Repeat("e", 100<<10)}}}
	shrink(r)
	b, _ := json.Marshal(r)
	if len(b) > maxRecordBytes {
		t.Fatalf("record %d bytes, want <= %d", len(b), maxRecordBytes)
	}
	if len(r.Components[0].LogTail) == 0 || r.Components[0].Error == "" {
		t.Fatalf("shrink dropped more than needed: %d tail lines", len(r.Components[0].LogTail))
	}
}

func TestSecretName_FollowsDesign(t *testing.T) {
	if got := SecretName("shop", 3); got != "unikube.state.v1.shop.v3" {
		t.Fatal(got)
	}
}
