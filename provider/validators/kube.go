package validators

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"k8s.io/apimachinery/pkg/labels"
)

var (
	_ validator.String = labelSelectorValidator{}
	_ validator.String = durationValidator{}
)

// labelSelectorValidator checks a Kubernetes label selector.
type labelSelectorValidator struct{}

// LabelSelector returns a validator for a Kubernetes label selector such as
// `app=db` or `app.kubernetes.io/instance=shop,tier in (db)`.
func LabelSelector() validator.String { return labelSelectorValidator{} }

func (labelSelectorValidator) Description(context.Context) string {
	return "value must be a Kubernetes label selector, e.g. app=db"
}

func (v labelSelectorValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be a Kubernetes label selector, e.g. `app=db`"
}

func (labelSelectorValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if s == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid label selector", "An empty selector matches everything; name the labels, e.g. app=db.")
		return
	}
	if _, err := labels.Parse(s); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid label selector", fmt.Sprintf("%q is not a label selector: %v", s, err))
	}
}

// durationValidator checks a Go duration.
type durationValidator struct{}

// Duration returns a validator for a positive Go duration such as `30s`.
func Duration() validator.String { return durationValidator{} }

func (durationValidator) Description(context.Context) string {
	return "value must be a positive duration such as 30s, 5m or 1h"
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be a positive duration such as `30s`, `5m` or `1h`"
}

func (durationValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d <= 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not a positive duration; use a number with a unit, e.g. 30s, 5m or 1h.", req.ConfigValue.ValueString()))
	}
}
