package validators

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

var _ validator.String = tagExpressionValidator{}

// tagExpressionValidator checks a tag expression used for reading or for
// writing a version.
type tagExpressionValidator struct {
	write bool
}

// TagExpressionForWrite returns a validator for the tag a new version gets: a
// literal tag (optionally with the [cand]- prefix), @random or
// @new-candidate. @latest, @candidate and digests select existing versions
// and are refused.
func TagExpressionForWrite() validator.String { return tagExpressionValidator{write: true} }

// TagExpressionForRead returns a validator for a tag expression that selects
// an existing version: @latest, @candidate, a literal tag or sha256:<hex>.
func TagExpressionForRead() validator.String { return tagExpressionValidator{write: false} }

func (v tagExpressionValidator) Description(context.Context) string {
	if v.write {
		return "value must be a tag (1-128 of [A-Za-z0-9_.-], optional [cand]- prefix), @random or @new-candidate"
	}
	return "value must be @latest, @candidate, a tag or sha256:<hex>"
}

func (v tagExpressionValidator) MarkdownDescription(ctx context.Context) string {
	if v.write {
		return "value must be a tag (1-128 of `[A-Za-z0-9_.-]`, optional `[cand]-` prefix), `@random` or `@new-candidate`"
	}
	return "value must be `@latest`, `@candidate`, a tag or `sha256:<hex>`"
}

func (v tagExpressionValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	expr, err := statepkg.ParseTagExpr(s)
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid tag expression", detail(err))
		return
	}
	switch {
	case v.write && (expr.Kind == statepkg.TagLatest || expr.Kind == statepkg.TagCandidate || expr.Kind == statepkg.TagDigest):
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid tag expression",
			fmt.Sprintf("%q selects an existing version; a new version needs a literal tag, @random or @new-candidate", s))
	case !v.write && isWriteOnly(expr.Kind):
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid tag expression",
			fmt.Sprintf("%q only names a version to be created; to read a version use @latest, @candidate, a tag or a digest", s))
	}
}
