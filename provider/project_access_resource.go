package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                = &ProjectAccessResource{}
	_ resource.ResourceWithConfigure   = &ProjectAccessResource{}
	_ resource.ResourceWithImportState = &ProjectAccessResource{}
)

// NewProjectAccessResource is the factory of `unikube_project_access`.
func NewProjectAccessResource() resource.Resource { return &ProjectAccessResource{} }

// ProjectAccessResource manages one subject's grant on a project. It is a
// resource of its own (like tfe_team_project_access or
// google_project_iam_member), not an authoritative block of the project:
// the creator's own owner grant and grants other configurations manage are
// left alone, and one grant can be added or removed without touching the
// rest.
type ProjectAccessResource struct {
	client *client.Client
}

// projectAccessModel is the state and plan of `unikube_project_access`.
type projectAccessModel struct {
	ID      types.String `tfsdk:"id"`
	Project types.String `tfsdk:"project"`
	Subject types.String `tfsdk:"subject"`
	Role    types.String `tfsdk:"role"`
}

func (r *ProjectAccessResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project_access"
}

func (r *ProjectAccessResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "One subject's role on a whole project: it holds that role on every state of the project " +
			"(a state's own `access` blocks in `unikube_named_state` add to it). " +
			"Each resource manages only its own subject's grant, so grants made elsewhere (the creator's owner grant, " +
			"other configurations) are left alone. A grant removed outside Terraform shows as a grant to create in the next plan.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`project/subject`, e.g. `payments/group:payments-devs`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Project the grant is on. Changing it moves the grant (replaces the resource).",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"subject": schema.StringAttribute{
				MarkdownDescription: "Grantee: `user:NAME`, `group:NAME`, `token:USER:NAME` (the token NAME of USER; see " +
					"`unikube_token`'s `subject`) or `token:NAME` (a token of your own user; the admin must name the user). " +
					"Changing it replaces the resource.",
				Required:      true,
				Validators:    []validator.String{validators.Subject()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"role": schema.StringAttribute{
				MarkdownDescription: "`owner` (manage access, delete), `maintainer` (create states and versions, tag operations, scripts), " +
					"`applier` (download and apply content, run scripts) or `viewer` (metadata only). Changes in place.",
				Required:   true,
				Validators: []validator.String{stringvalidator.OneOf(grantRoles...)},
			},
		},
	}
}

func (r *ProjectAccessResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client = pd.client
	}
}

func (r *ProjectAccessResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan projectAccessModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.put(ctx, &plan); err != nil {
		addClientError(&resp.Diagnostics, fmt.Sprintf("Could not grant %s to %s on project %s", plan.Role.ValueString(), plan.Subject.ValueString(), plan.Project.ValueString()), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// put creates or replaces the grant and records its id.
func (r *ProjectAccessResource) put(ctx context.Context, m *projectAccessModel) error {
	g, err := r.client.PutGrant(ctx, m.Project.ValueString(), "", m.Subject.ValueString(), m.Role.ValueString())
	if err != nil {
		return err
	}
	m.ID = types.StringValue(g.Project + "/" + g.Subject)
	return nil
}

func (r *ProjectAccessResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state projectAccessModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, subject := state.Project.ValueString(), state.Subject.ValueString()
	grants, err := r.client.ListGrants(ctx, project, "")
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the grants on project "+project, err)
		return
	}
	for _, g := range grants {
		if g.State == "" && g.Subject == subject {
			state.ID = types.StringValue(project + "/" + subject)
			state.Role = types.StringValue(g.Role)
			resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
			return
		}
	}
	// Revoked outside Terraform: the next plan grants it again.
	resp.State.RemoveResource(ctx)
}

func (r *ProjectAccessResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan projectAccessModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.put(ctx, &plan); err != nil {
		addClientError(&resp.Diagnostics, fmt.Sprintf("Could not grant %s to %s on project %s", plan.Role.ValueString(), plan.Subject.ValueString(), plan.Project.ValueString()), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ProjectAccessResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state projectAccessModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, subject := state.Project.ValueString(), state.Subject.ValueString()
	err := r.client.DeleteGrant(ctx, project, "", subject)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, fmt.Sprintf("Could not revoke %s's grant on project %s", subject, project), err)
	}
}

func (r *ProjectAccessResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	project, subject, ok := strings.Cut(req.ID, "/")
	if !ok || statepkg.ValidateName(project) != nil || !strings.Contains(subject, ":") {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a project grant by its project and subject, e.g. `terraform import ADDRESS payments/group:payments-devs`; got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project"), project)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("subject"), subject)...)
}
