package validators

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var _ validator.String = projectNameValidator{}

// projectNameValidator checks a `project/name` reference to a script or
// state without a version.
type projectNameValidator struct{}

// ProjectName returns a validator for `project/name`, both lowercase DNS
// labels.
func ProjectName() validator.String { return projectNameValidator{} }

func (projectNameValidator) Description(context.Context) string {
	return "value must be project/name, e.g. shop/anonymize"
}

func (v projectNameValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be `project/name`, e.g. `shop/anonymize`"
}

func (projectNameValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	project, name, ok := strings.Cut(s, "/")
	if !ok {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid reference", fmt.Sprintf("%q is not project/name, e.g. shop/anonymize.", s))
		return
	}
	for _, part := range []string{project, name} {
		if err := statepkg.ValidateName(part); err != nil {
			resp.Diagnostics.AddAttributeError(req.Path, "Invalid reference", fmt.Sprintf("%q: %s", s, detail(err)))
			return
		}
	}
}
