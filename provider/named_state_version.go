package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
)

// planVersion is called at plan time when the sources changed and the apply
// has to make a new version from them. It fails the plan when this build
// cannot do that, rather than letting the apply fail halfway.
func (r *NamedStateResource) planVersion(ctx context.Context, plan *namedStateResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	diags.AddAttributeError(path.Root("component"), "Versions from component sources are not supported yet",
		"This build of the provider manages the state, its description and its access grants, and hashes the component sources, "+
			"but cannot capture them into a version yet. Remove the component blocks to manage the state without versions.")
	return diags
}

// makeVersion captures the sources into a new version and records it in
// plan. It only runs after planVersion accepted the plan.
func (r *NamedStateResource) makeVersion(ctx context.Context, plan *namedStateResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if plan.ContentHash.IsNull() {
		return diags
	}
	diags.AddAttributeError(path.Root("component"), "Versions from component sources are not supported yet",
		"This build of the provider cannot capture component sources into a version.")
	return diags
}
