package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// addClientError turns a platform client error into a diagnostic that says
// what to do about it. The client's errors never carry the token.
func addClientError(diags *diag.Diagnostics, summary string, err error) {
	var hint string
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		hint = "The platform rejected the token. Check the provider's token (or UNIKUBE_TOKEN)."
	case errors.Is(err, client.ErrForbidden):
		hint = "The token's subject lacks the role this needs. Ask an owner of the project to grant it."
	case errors.Is(err, client.ErrNotFound):
		hint = "It does not exist on the platform (check the project and name)."
	case errors.Is(err, client.ErrConflict):
		hint = "It conflicts with what is on the platform (it may already exist; import it instead)."
	}
	detail := err.Error()
	if hint != "" {
		detail += "\n\n" + hint
	}
	diags.AddError(summary, detail)
}

// importProjectName imports a resource whose ID is `project/name`.
func importProjectName(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse, what string) {
	project, name, ok := strings.Cut(req.ID, "/")
	if !ok || statepkg.ValidateName(project) != nil || statepkg.ValidateName(name) != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a %s by its project and name, e.g. `terraform import ADDRESS shop/seed`; got %q.", what, req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project"), project)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}

// listElements decodes a list into target; null and unknown lists leave it
// empty.
func listElements[T any](ctx context.Context, l types.List, target *[]T) diag.Diagnostics {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	return l.ElementsAs(ctx, target, false)
}

// objectList builds a list of objects. An empty result stays null when the
// configuration left the attribute out (nullWhenEmpty), so an omitted
// optional list does not show as a diff against [].
func objectList[T any](ctx context.Context, elems []T, attrTypes map[string]attr.Type, nullWhenEmpty bool) (types.List, diag.Diagnostics) {
	elemType := types.ObjectType{AttrTypes: attrTypes}
	if len(elems) == 0 && nullWhenEmpty {
		return types.ListNull(elemType), nil
	}
	return types.ListValueFrom(ctx, elemType, elems)
}

// stringValues converts strings to Terraform values (for sets and lists).
func stringValues(ss []string) []attr.Value {
	out := make([]attr.Value, len(ss))
	for i, s := range ss {
		out[i] = types.StringValue(s)
	}
	return out
}
