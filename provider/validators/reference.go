package validators

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var _ validator.String = referenceValidator{}

// referenceValidator checks a version reference: project/state,
// project/state:TAG-EXPRESSION or project/state@sha256:<hex>.
type referenceValidator struct{}

// Reference returns a validator for a reference that reads an existing
// version. Write-only tag expressions (@random, @new-candidate) are refused:
// they name a version that does not exist yet.
func Reference() validator.String { return referenceValidator{} }

func (referenceValidator) Description(context.Context) string {
	return "value must be a state reference: project/state, project/state:TAG-EXPRESSION or project/state@sha256:DIGEST"
}

func (v referenceValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be a state reference: `project/state`, `project/state:TAG-EXPRESSION` or `project/state@sha256:DIGEST`"
}

func (v referenceValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	ref, err := statepkg.ParseRef(req.ConfigValue.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid state reference",
			fmt.Sprintf("%s Examples: shop/seed, shop/seed:v1.2, shop/seed:@candidate, shop/seed@sha256:<64 hex digits>.", detail(err)))
		return
	}
	expr, err := ref.Expr()
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid state reference", detail(err))
		return
	}
	if isWriteOnly(expr.Kind) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid state reference",
			fmt.Sprintf("tag expression %q only names a version to be created; to read a version use @latest, @candidate, a tag or a digest", ref.Tag))
	}
}

func isWriteOnly(k statepkg.TagKind) bool {
	return k == statepkg.TagRandom || k == statepkg.TagNewCandidate
}
