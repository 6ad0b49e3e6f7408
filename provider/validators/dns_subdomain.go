package validators

import (
	"context"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = dnsSubdomainValidator{}

// dnsSubdomain is a Kubernetes object name (RFC 1123 subdomain).
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// dnsSubdomainValidator checks names of Kubernetes objects such as Secrets.
type dnsSubdomainValidator struct{}

// DNSSubdomain returns a validator for the name of a Kubernetes object
// (Secret, ServiceAccount, ...): an RFC 1123 subdomain of at most 253
// characters.
func DNSSubdomain() validator.String { return dnsSubdomainValidator{} }

func (dnsSubdomainValidator) Description(context.Context) string {
	return "value must be a Kubernetes object name: lowercase letters, digits, '-' and '.', at most 253 characters"
}

func (v dnsSubdomainValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (dnsSubdomainValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if len(s) > 253 || !dnsSubdomain.MatchString(s) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Kubernetes object name",
			"The name must be 1-253 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit (e.g. db-credentials).")
	}
}
