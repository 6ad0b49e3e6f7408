package validators

import (
	"context"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = subjectValidator{}

// subjectPattern is the platform's grant subject: user:NAME, group:NAME,
// token:NAME or token:USER:NAME (the token NAME of USER), each name being
// 1-128 of [A-Za-z0-9_.@+-].
var subjectPattern = regexp.MustCompile(`^((user|group|token):[A-Za-z0-9_.@+-]{1,128}|token:[A-Za-z0-9_.@+-]{1,128}:[A-Za-z0-9_.@+-]{1,128})$`)

// subjectValidator checks the grantee of an access grant.
type subjectValidator struct{}

// Subject returns a validator for the subject of an access grant:
// `user:NAME`, `group:NAME`, `token:USER:NAME` or `token:NAME`.
func Subject() validator.String { return subjectValidator{} }

func (subjectValidator) Description(context.Context) string {
	return "value must be user:NAME, group:NAME, token:USER:NAME or token:NAME, each name being 1-128 of [A-Za-z0-9_.@+-]"
}

func (v subjectValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be `user:NAME`, `group:NAME`, `token:USER:NAME` or `token:NAME`, each name being 1-128 of `[A-Za-z0-9_.@+-]`"
}

func (subjectValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if !subjectPattern.MatchString(req.ConfigValue.ValueString()) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid grant subject",
			"A subject is user:NAME, group:NAME, token:USER:NAME (USER's token NAME) or token:NAME (your own token NAME), each name being 1-128 of [A-Za-z0-9_.@+-] (e.g. group:shop-devs).")
	}
}
