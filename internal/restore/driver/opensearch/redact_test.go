package opensearch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestOpenSearch_UnparsableURLDoesNotShowItsPassword: a password with a
// character a URL must escape (%, #, /) makes the URL unparsable; the
// error saying so must not print the password into logs and CI output.
func TestOpenSearch_UnparsableURLDoesNotShowItsPassword(t *testing.T) {
	d := opensearch.New()
	c := statepkg.Component{Name: "search", Kind: statepkg.KindOpenSearch, Digest: "sha256:" + strings.Repeat("0", 64)}
	for _, u := range []string{
		"https://elastic:s3cr%et@search.internal:9200",
		"https://elastic:s3cr#et@search.internal:9200",
		"https://elastic:s3cr/et@search.internal:9200/logs-*",
	} {
		pl, err := d.Plan(context.Background(), c, driver.Target{URL: u})
		if err == nil {
			t.Fatalf("%s: no error", u)
		}
		if strings.Contains(err.Error(), "s3cr") || strings.Contains(pl.Target, "s3cr") {
			t.Errorf("the plan shows the password: %q, %v", pl.Target, err)
		}
		if r := driver.Redact(u); strings.Contains(r, "s3cr") || !strings.Contains(r, "search.internal") {
			t.Errorf("Redact(%s) = %s, want the host without the password", u, r)
		}
	}
}
