package auth

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

func TestParseRole_OrdersRoles(t *testing.T) {
	var prev Role
	for _, n := range []string{"viewer", "applier", "maintainer", "owner"} {
		r, err := ParseRole(n)
		if err != nil || r <= prev || r.String() != n {
			t.Fatalf("%s: %v %v", n, r, err)
		}
		prev = r
	}
	for _, bad := range []string{"", "none", "Owner", "admin"} {
		if _, err := ParseRole(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestValidateSubject_AcceptsKnownKinds(t *testing.T) {
	for _, ok := range []string{"user:alice", "group:devs", "token:ci-bot", "token:robot:ci-bot", "user:a.b@example.com"} {
		if err := ValidateSubject(ok); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"alice", "role:x", "user:", "user:a b", "user:../x", "group:" + strings.Repeat("a", 129), "user:..", "token::x", "token:a:", "token:a:b:c", "user:a:b"} {
		if err := ValidateSubject(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestPrincipal_SubjectsAndNames(t *testing.T) {
	p := Principal{Token: store.Token{Token: apitypes.Token{Name: "laptop", Kind: store.TokenUser, User: "mia", Groups: []string{"devs", "ops"}}}}
	want := []string{"token:laptop", "token:mia:laptop", "user:mia", "group:devs", "group:ops"}
	if got := p.Subjects(); !slices.Equal(got, want) || p.Name() != "user:mia" || p.IsAdmin() || p.IsJob() {
		t.Fatalf("user: %v %s", got, p.Name())
	}
	job := Principal{Token: store.Token{Token: apitypes.Token{Name: "job-1", Kind: store.TokenJob, User: "mia"}}}
	if job.Subjects() != nil || !job.IsJob() {
		t.Fatal("a job token must match no grant subject")
	}
	upload := Principal{Token: store.Token{Token: apitypes.Token{Name: "upload-1", Kind: store.TokenUpload, User: "mia"}}}
	if upload.Subjects() != nil || !upload.IsScoped() || upload.Name() != "upload:upload-1" {
		t.Fatal("an upload token must match no grant subject")
	}
	if (Principal{Token: store.Token{Token: apitypes.Token{Kind: store.TokenAdmin}}}).Name() != "admin" {
		t.Fatal("admin name")
	}
}

func TestNewSecret_RandomPrefixedAndHashed(t *testing.T) {
	a, ha, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, hb, _ := NewSecret()
	if a == b || ha == hb || !strings.HasPrefix(a, TokenPrefix) || HashSecret(a) != ha || strings.Contains(ha, a) {
		t.Fatalf("secrets %q %q hashes %q %q", a, b, ha, hb)
	}
}
