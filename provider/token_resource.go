package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                = &TokenResource{}
	_ resource.ResourceWithConfigure   = &TokenResource{}
	_ resource.ResourceWithImportState = &TokenResource{}
	_ resource.ResourceWithModifyPlan  = &TokenResource{}
)

// principalName is the platform's user, group and token name.
var principalName = regexp.MustCompile(`^[A-Za-z0-9_.@+-]{1,128}$`)

// NewTokenResource is the factory of `unikube_token`.
func NewTokenResource() resource.Resource { return &TokenResource{} }

// TokenResource manages an API token for automation. A token cannot be
// changed on the platform, so every argument replaces it.
type TokenResource struct {
	client *client.Client
}

// tokenResourceModel is the state and plan of `unikube_token`.
type tokenResourceModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	User      types.String `tfsdk:"user"`
	Groups    types.Set    `tfsdk:"groups"`
	TTL       types.String `tfsdk:"ttl"`
	ExpiresAt types.String `tfsdk:"expires_at"`
	Subject   types.String `tfsdk:"subject"`
	Token     types.String `tfsdk:"token"`
	CreatedAt types.String `tfsdk:"created_at"`
	CreatedBy types.String `tfsdk:"created_by"`
}

func (r *TokenResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_token"
}

// tokenNameValidators check a user, group or token name.
func tokenNameValidators() []validator.String {
	return []validator.String{stringvalidator.RegexMatches(principalName, "must be 1-128 of A-Z, a-z, 0-9 and _ . @ + -")}
}

func (r *TokenResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An API token for automation (CI, a deploy pipeline). It acts as `user` with `groups`, so it holds " +
			"the roles granted to them, and the roles granted to the token itself (its `subject` in `unikube_project_access` " +
			"or a state's `access` block). The admin may create tokens for any user and group; a user only for themself with " +
			"groups they are in. A token never outlives the token that created it and is revoked with it.\n\n" +
			"The secret is in the `token` attribute, set once when the token is created and kept (sensitive) in the Terraform state; " +
			"it cannot be read back, so an imported token has none. For short-lived use that keeps the secret out of the state, " +
			"use the ephemeral resource `unikube_token` (Terraform 1.10 or later) instead. " +
			"A token revoked or expired on the platform is gone: the next plan creates it again, with a new secret, under the same name.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The platform's id of the token.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the token, unique among `user`'s tokens. Changing it replaces the token.",
				Required:            true,
				Validators:          tokenNameValidators(),
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"user": schema.StringAttribute{
				MarkdownDescription: "User the token acts as (subject `user:NAME`). Defaults to the provider token's user; " +
					"the admin token has none and must set it. Changing it replaces the token.",
				Optional:   true,
				Computed:   true,
				Validators: tokenNameValidators(),
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplaceIfConfigured(),
				},
			},
			"groups": schema.SetAttribute{
				MarkdownDescription: "Groups the token acts in (subjects `group:NAME`). Changing them replaces the token.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.Set{setvalidator.ValueStringsAre(tokenNameValidators()...)},
				PlanModifiers:       []planmodifier.Set{setplanmodifier.RequiresReplace()},
			},
			"ttl": schema.StringAttribute{
				MarkdownDescription: "Lifetime from creation, e.g. `720h`; unset: no expiry (but never past the creating token's). " +
					"Changing it replaces the token.",
				Optional:      true,
				Validators:    []validator.String{validators.Duration()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"expires_at": schema.StringAttribute{
				MarkdownDescription: "When the token expires (RFC 3339); null: never.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"subject": schema.StringAttribute{
				MarkdownDescription: "The grant subject naming this token, `token:USER:NAME`, for `unikube_project_access` and `access` blocks.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"token": schema.StringAttribute{
				MarkdownDescription: "The secret (`uks_...`), set once at creation; null after an import.",
				Computed:            true,
				Sensitive:           true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_at": schema.StringAttribute{
				MarkdownDescription: "When the token was created (RFC 3339).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_by": schema.StringAttribute{
				MarkdownDescription: "Subject that created the token.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *TokenResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client = pd.client
	}
}

// ModifyPlan fills in the subject of a token to be created when its user
// and name are known, so grants to it (which name the subject) are not
// replaced when the token is.
func (r *TokenResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan tokenResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !plan.Subject.IsUnknown() {
		return
	}
	if user, name := plan.User, plan.Name; !user.IsNull() && !user.IsUnknown() && !name.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("subject"), "token:"+user.ValueString()+":"+name.ValueString())...)
	}
}

func (r *TokenResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan tokenResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	treq := client.TokenRequest{Name: plan.Name.ValueString(), User: plan.User.ValueString()}
	if !plan.Groups.IsNull() && !plan.Groups.IsUnknown() {
		resp.Diagnostics.Append(plan.Groups.ElementsAs(ctx, &treq.Groups, false)...)
	}
	if !plan.TTL.IsNull() {
		ttl, err := time.ParseDuration(plan.TTL.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("ttl"), "Invalid duration", err.Error())
		}
		treq.TTLSeconds = int64((ttl + time.Second - 1) / time.Second)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	t, err := r.client.CreateToken(ctx, treq)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not create token "+treq.Name, err)
		return
	}
	setToken(&plan, t.Token)
	plan.Token = types.StringValue(t.Secret)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *TokenResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state tokenResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	t, err := r.client.FindToken(ctx, state.User.ValueString(), state.Name.ValueString())
	switch {
	case errors.Is(err, client.ErrNotFound):
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		addClientError(&resp.Diagnostics, "Could not read token "+state.Name.ValueString(), err)
		return
	}
	// Revoked, expired, or replaced by another token of the same name
	// outside Terraform: this token is gone, the next plan makes a new one.
	if !t.Live(time.Now()) || (!state.ID.IsNull() && state.ID.ValueString() != t.ID) {
		resp.State.RemoveResource(ctx)
		return
	}
	setToken(&state, t)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update is never called with a change: every argument replaces the token.
// It keeps the state as planned (e.g. after a no-op refresh).
func (r *TokenResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan tokenResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
}

func (r *TokenResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state tokenResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.RevokeUserToken(ctx, state.User.ValueString(), state.Name.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, "Could not revoke token "+state.Name.ValueString(), err)
	}
}

func (r *TokenResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	user, name, ok := strings.Cut(req.ID, "/")
	if !ok || !principalName.MatchString(user) || !principalName.MatchString(name) {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a token by its user and name, e.g. `terraform import ADDRESS ci-bot/deploy`; got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("user"), user)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}

// setToken records what the platform says about a token (never its secret).
func setToken(m *tokenResourceModel, t client.Token) {
	m.ID = types.StringValue(t.ID)
	m.Name = types.StringValue(t.Name)
	m.User = types.StringValue(t.User)
	m.Subject = types.StringValue("token:" + t.User + ":" + t.Name)
	if len(t.Groups) > 0 || !m.Groups.IsNull() {
		m.Groups = types.SetValueMust(types.StringType, stringValues(t.Groups))
	}
	m.ExpiresAt = types.StringNull()
	if t.ExpiresAt != nil {
		m.ExpiresAt = types.StringValue(t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	m.CreatedAt = types.StringValue(t.CreatedAt.UTC().Format(time.RFC3339))
	m.CreatedBy = types.StringValue(t.CreatedBy)
}
