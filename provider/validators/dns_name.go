package validators

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var _ validator.String = dnsNameValidator{}

// dnsNameValidator checks project, state, script and component names.
type dnsNameValidator struct{}

// DNSName returns a validator for names of projects, states, scripts and
// components: lowercase DNS labels of at most 63 characters.
func DNSName() validator.String { return dnsNameValidator{} }

func (dnsNameValidator) Description(context.Context) string {
	return "value must be a lowercase DNS label: 1-63 of [a-z0-9-], starting and ending with a letter or digit"
}

func (v dnsNameValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be a lowercase DNS label: 1-63 of `[a-z0-9-]`, starting and ending with a letter or digit"
}

func (dnsNameValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := statepkg.ValidateName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid name", detail(err))
	}
}
