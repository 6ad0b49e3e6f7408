package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                = &ProjectResource{}
	_ resource.ResourceWithConfigure   = &ProjectResource{}
	_ resource.ResourceWithImportState = &ProjectResource{}
	_ resource.ResourceWithModifyPlan  = &ProjectResource{}
)

// NewProjectResource is the factory of `unikube_project`.
func NewProjectResource() resource.Resource { return &ProjectResource{} }

// ProjectResource manages a project: the namespace of states and scripts
// that project grants apply to.
type ProjectResource struct {
	client *client.Client
}

// projectResourceModel is the state and plan of `unikube_project`.
type projectResourceModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	Description        types.String `tfsdk:"description"`
	DeletionProtection types.Bool   `tfsdk:"deletion_protection"`
	CreatedAt          types.String `tfsdk:"created_at"`
	CreatedBy          types.String `tfsdk:"created_by"`
}

func (r *ProjectResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project"
}

func (r *ProjectResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A project: the namespace of named states and cluster scripts, and the scope of project grants " +
			"(`unikube_project_access`). The subject that creates it becomes its owner (the admin token needs no grant). " +
			"Deleting a project deletes its states, versions, grants and scripts, so `deletion_protection` is on by default.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The project's name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the project, a lowercase DNS label unique on the platform. Changing it replaces the project.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "What the project is for.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
			},
			"deletion_protection": schema.BoolAttribute{
				MarkdownDescription: "While `true` (the default), Terraform refuses to destroy or replace the project, " +
					"which would delete every state, version, grant and script in it. Set it to `false` and apply before destroying.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"created_at": schema.StringAttribute{
				MarkdownDescription: "When the project was created (RFC 3339).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_by": schema.StringAttribute{
				MarkdownDescription: "Subject that created the project (`user:NAME`, or `admin`).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *ProjectResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client = pd.client
	}
}

// ModifyPlan refuses to destroy or replace a protected project.
func (r *ProjectResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() {
		return
	}
	var state projectResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !state.DeletionProtection.ValueBool() {
		return
	}
	if req.Plan.Raw.IsNull() {
		resp.Diagnostics.AddError("Project is protected from deletion", protectedProjectDetail(state.Name.ValueString(), "Destroying"))
		return
	}
	var plan projectResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !resp.Diagnostics.HasError() && !plan.Name.Equal(state.Name) {
		resp.Diagnostics.AddError("Project is protected from deletion", protectedProjectDetail(state.Name.ValueString(), "Renaming (which replaces)"))
	}
}

func protectedProjectDetail(name, what string) string {
	return fmt.Sprintf("%s project %s would delete every state, version, grant and script in it. Set deletion_protection = false and apply first.", what, name)
}

func (r *ProjectResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan projectResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.client.CreateProject(ctx, plan.Name.ValueString(), plan.Description.ValueString())
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not create project "+plan.Name.ValueString(), err)
		return
	}
	setProject(&plan, p)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ProjectResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state projectResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := r.client.GetProject(ctx, state.Name.ValueString())
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read project "+state.Name.ValueString(), err)
		return
	}
	setProject(&state, p)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *ProjectResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state projectResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Description.Equal(state.Description) {
		p, err := r.client.UpdateProject(ctx, plan.Name.ValueString(), plan.Description.ValueString())
		if err != nil {
			addClientError(&resp.Diagnostics, "Could not update project "+plan.Name.ValueString(), err)
			return
		}
		setProject(&plan, p)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ProjectResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state projectResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// ModifyPlan already refuses this; a -refresh=false run must not slip
	// through.
	if state.DeletionProtection.ValueBool() {
		resp.Diagnostics.AddError("Project is protected from deletion", protectedProjectDetail(state.Name.ValueString(), "Destroying"))
		return
	}
	err := r.client.DeleteProject(ctx, state.Name.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, "Could not delete project "+state.Name.ValueString(), err)
	}
}

func (r *ProjectResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if err := statepkg.ValidateName(req.ID); err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a project by its name, e.g. `terraform import unikube_project.shop shop`; got %q: %v.", req.ID, err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
	// An imported project is protected like a created one until the
	// configuration says otherwise.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("deletion_protection"), true)...)
}

// setProject records what the platform says about a project.
func setProject(m *projectResourceModel, p client.Project) {
	m.ID = types.StringValue(p.Name)
	m.Name = types.StringValue(p.Name)
	m.Description = types.StringValue(p.Description)
	m.CreatedAt = types.StringValue(p.CreatedAt.UTC().Format(time.RFC3339))
	m.CreatedBy = types.StringValue(p.CreatedBy)
}
