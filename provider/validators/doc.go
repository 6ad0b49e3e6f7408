// Package validators holds the provider's plan-time string validators. Each
// delegates the grammar to internal/statepkg (the one place it is defined)
// and reports problems with AddAttributeError on the attribute's path, so
// `terraform validate` and `terraform plan` point at the offending line.
package validators

import (
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// detail turns a statepkg error into a diagnostic detail: the sentinel's
// "invalid reference: " prefix says nothing the summary does not already
// say, so it is dropped, and the sentence is closed.
func detail(err error) string {
	s := strings.TrimPrefix(err.Error(), statepkg.ErrInvalidRef.Error()+": ")
	s = strings.Replace(s, ": "+statepkg.ErrInvalidRef.Error()+": ", ": ", 1)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
