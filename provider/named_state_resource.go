package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
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
	"github.com/unikubehq/terraform-provider-unikube/provider/internal/contenthash"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                = &NamedStateResource{}
	_ resource.ResourceWithConfigure   = &NamedStateResource{}
	_ resource.ResourceWithImportState = &NamedStateResource{}
	_ resource.ResourceWithModifyPlan  = &NamedStateResource{}
)

// Roles a grant can give, highest first.
var grantRoles = []string{"owner", "maintainer", "applier", "viewer"}

// componentKinds are the kinds a component block can capture from local
// sources.
var componentKinds = []string{"postgres", "mysql", "redis", "volume", "opensearch", "elasticsearch"}

// Default timeouts of creating and updating a state (both may capture and
// upload a new version) and of deleting it.
const (
	defaultWriteTimeout  = 30 * time.Minute
	defaultDeleteTimeout = 5 * time.Minute
)

// NewNamedStateResource is the factory of `unikube_named_state`.
func NewNamedStateResource() resource.Resource { return &NamedStateResource{} }

// NamedStateResource manages a named state, its access grants and the
// versions made from its component sources.
type NamedStateResource struct {
	client *client.Client
}

// namedStateResourceModel is the state and plan of `unikube_named_state`.
type namedStateResourceModel struct {
	ID                 types.String   `tfsdk:"id"`
	Project            types.String   `tfsdk:"project"`
	Name               types.String   `tfsdk:"name"`
	Description        types.String   `tfsdk:"description"`
	DeletionProtection types.Bool     `tfsdk:"deletion_protection"`
	Tag                types.String   `tfsdk:"tag"`
	Revision           types.String   `tfsdk:"revision"`
	Message            types.String   `tfsdk:"message"`
	CaptureTrigger     types.String   `tfsdk:"capture_trigger"`
	Components         types.List     `tfsdk:"component"`
	Access             types.Set      `tfsdk:"access"`
	ContentHash        types.String   `tfsdk:"content_hash"`
	VersionTag         types.String   `tfsdk:"version_tag"`
	VersionDigest      types.String   `tfsdk:"version_digest"`
	Size               types.Int64    `tfsdk:"size"`
	CreatedAt          types.String   `tfsdk:"created_at"`
	Ref                types.String   `tfsdk:"ref"`
	Timeouts           timeouts.Value `tfsdk:"timeouts"`
}

// componentModel is one `component` block.
type componentModel struct {
	Name   types.String `tfsdk:"name"`
	Kind   types.String `tfsdk:"kind"`
	Source *sourceModel `tfsdk:"source"`
}

// sourceModel is a component's `source` block.
type sourceModel struct {
	Path types.String `tfsdk:"path"`
	URL  types.String `tfsdk:"url"`
}

func (r *NamedStateResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_named_state"
}

func (r *NamedStateResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A named state: a versioned, access-controlled package of an application's data. " +
			"`component` blocks name the local sources (a dump file, a directory) a version is made from; " +
			"the plan hashes them, so changed sources show as an update that creates a new version and unchanged sources show no diff. " +
			"`access` blocks grant roles on the state. After an import, the next plan makes no version when the newest version " +
			"was made by this resource from sources that hash the same (each version records its sources' `content_hash`); " +
			"otherwise the next apply makes a version from the configured sources. Give `ref` to `unikube_state_apply.state`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`project/name`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Project the state belongs to; it must exist. Changing it replaces the state.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the state, a lowercase DNS label unique in the project. Changing it replaces the state.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "What the state holds and what it is for.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
			},
			"deletion_protection": schema.BoolAttribute{
				MarkdownDescription: "While `true` (the default), Terraform refuses to destroy or replace the state, " +
					"which would delete every version of it. Set it to `false` and apply before destroying.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"tag": schema.StringAttribute{
				MarkdownDescription: "Tag of the next version made from the sources: a literal tag (`v1.2`, `[cand]-v2`), " +
					"`@random` (the default: a fresh random tag) or `@new-candidate` (a fresh candidate tag). " +
					"Changing it alone creates no version.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("@random"),
				Validators: []validator.String{validators.TagExpressionForWrite()},
			},
			"revision": schema.StringAttribute{
				MarkdownDescription: "Revision label of the next version, e.g. the application version it belongs to.",
				Optional:            true,
			},
			"message": schema.StringAttribute{
				MarkdownDescription: "Message of the next version.",
				Optional:            true,
			},
			"capture_trigger": schema.StringAttribute{
				MarkdownDescription: "Any value; changing it makes a new version even when no local source changed, e.g. " +
					"`formatdate(\"YYYY-MM-DD\", timestamp())` for a daily capture of live sources, or the application version.",
				Optional: true,
			},
			"content_hash": schema.StringAttribute{
				MarkdownDescription: "Digest of the component sources, computed at plan time. A change means the apply makes a new version.",
				Computed:            true,
			},
			"version_tag": schema.StringAttribute{
				MarkdownDescription: "Tag of the version made from the current sources.",
				Computed:            true,
			},
			"version_digest": schema.StringAttribute{
				MarkdownDescription: "Digest (`sha256:<hex>`) of the version made from the current sources.",
				Computed:            true,
			},
			"size": schema.Int64Attribute{
				MarkdownDescription: "Uncompressed size in bytes of the version made from the current sources.",
				Computed:            true,
			},
			"created_at": schema.StringAttribute{
				MarkdownDescription: "When the version made from the current sources was created (RFC 3339).",
				Computed:            true,
			},
			"ref": schema.StringAttribute{
				MarkdownDescription: "Reference of the version made from the current sources, `project/name@sha256:...`: " +
					"give it to `unikube_state_apply.state`. While the plan makes a new version (changed sources, " +
					"`capture_trigger`) it is unknown, so an apply that references it restores the new version in the same " +
					"`terraform apply`. Without `component` blocks it is `project/name` (the newest version). " +
					"(`id` names the state, not a version: an apply given `id` follows a new version only on the next apply.)",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"component": schema.ListNestedBlock{
				MarkdownDescription: "A service's data in the state, read from a local source when a version is made.",
				Validators:          []validator.List{uniqueComponentNames{}},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							MarkdownDescription: "Name of the component, a lowercase DNS label unique in the state, e.g. `db`.",
							Required:            true,
							Validators:          []validator.String{validators.DNSName()},
						},
						"kind": schema.StringAttribute{
							MarkdownDescription: "Kind of service: `postgres` (a `pg_dump` archive), `mysql` (an SQL dump), " +
								"`redis` (an RDB file), `volume` (a directory) or `opensearch` (alias `elasticsearch`: indexes of a live " +
								"`http(s)://` server, the URL path naming index patterns, or a dump file of the driver).",
							Required:   true,
							Validators: []validator.String{stringvalidator.OneOf(componentKinds...)},
						},
					},
					Blocks: map[string]schema.Block{
						"source": schema.SingleNestedBlock{
							MarkdownDescription: "Where the component's data comes from.",
							Validators:          []validator.Object{objectvalidator.IsRequired()},
							Attributes: map[string]schema.Attribute{
								"path": schema.StringAttribute{
									MarkdownDescription: "Local file (a dump) or directory (a volume), e.g. `\"${path.module}/seed/db.dump\"`.",
									Optional:            true,
									Validators: []validator.String{
										stringvalidator.LengthAtLeast(1),
										stringvalidator.ExactlyOneOf(path.MatchRelative().AtParent().AtName("url")),
									},
								},
								"url": schema.StringAttribute{
									MarkdownDescription: "Live service to dump: `postgres://...`, `mysql://...` or `redis://...`. " +
										"Write-only (it usually holds a password; requires Terraform 1.11 or later). A live source cannot be hashed " +
										"at plan time: it is captured when the state is created, when other sources change, and when `capture_trigger` changes.",
									Optional:   true,
									Sensitive:  true,
									WriteOnly:  true,
									Validators: []validator.String{validators.EndpointURL()},
								},
							},
						},
					},
				},
			},
			"access": schema.SetNestedBlock{
				MarkdownDescription: "A role granted on this state. A state grant adds to what the subject has on the project. " +
					"Grants on the state that are not listed here are removed.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"subject": schema.StringAttribute{
							MarkdownDescription: "Grantee: `user:NAME`, `group:NAME`, `token:USER:NAME` (the token NAME of USER) or `token:NAME` (a token of your own user; the admin must name the user).",
							Required:            true,
							Validators:          []validator.String{validators.Subject()},
						},
						"role": schema.StringAttribute{
							MarkdownDescription: "`owner` (manage access, delete), `maintainer` (create versions, tag operations), " +
								"`applier` (download and apply content) or `viewer` (metadata only).",
							Required:   true,
							Validators: []validator.String{stringvalidator.OneOf(grantRoles...)},
						},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *NamedStateResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client = pd.client
	}
}

// ModifyPlan refuses to destroy a protected state, and computes the content
// hash of the sources so the plan says whether a new version will be made.
func (r *NamedStateResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var state *namedStateResourceModel
	if !req.State.Raw.IsNull() {
		state = &namedStateResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if req.Plan.Raw.IsNull() {
		if state != nil && state.DeletionProtection.ValueBool() {
			resp.Diagnostics.AddError("State is protected from deletion",
				fmt.Sprintf("Destroying %s would delete every version of it. Set deletion_protection = false and apply first.", state.ID.ValueString()))
		}
		return
	}
	var plan namedStateResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The attributes' RequiresReplace modifiers do not show in this
	// response, so compare directly.
	if state != nil && state.DeletionProtection.ValueBool() &&
		(!plan.Project.Equal(state.Project) || !plan.Name.Equal(state.Name)) {
		resp.Diagnostics.AddError("State is protected from deletion",
			fmt.Sprintf("Changing the project or name replaces %s, deleting every version of it. Set deletion_protection = false and apply first.", state.ID.ValueString()))
		return
	}

	// Sources come from the configuration: write-only URLs are not in the
	// plan.
	var configComponents types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("component"), &configComponents)...)
	sources, known, diags := componentSources(ctx, configComponents)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	switch {
	case !known || plan.CaptureTrigger.IsUnknown():
		// A path known only after apply: the hash is too.
		plan.ContentHash = types.StringUnknown()
	case len(sources) == 0:
		plan.ContentHash = types.StringNull()
	default:
		digest, err := contenthash.Digest(ctx, hashSources(sources), plan.CaptureTrigger.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("component"), "Cannot read component source", err.Error())
			return
		}
		plan.ContentHash = types.StringValue(digest)
	}

	unchanged := state != nil && plan.ContentHash.Equal(state.ContentHash) && !plan.ContentHash.IsUnknown() &&
		plan.Project.Equal(state.Project) && plan.Name.Equal(state.Name)
	switch {
	case unchanged:
		plan.VersionTag, plan.VersionDigest, plan.Size, plan.CreatedAt = state.VersionTag, state.VersionDigest, state.Size, state.CreatedAt
	case plan.ContentHash.IsNull():
		plan.VersionTag, plan.VersionDigest, plan.Size, plan.CreatedAt = types.StringNull(), types.StringNull(), types.Int64Null(), types.StringNull()
	default:
		plan.VersionTag, plan.VersionDigest, plan.Size, plan.CreatedAt = types.StringUnknown(), types.StringUnknown(), types.Int64Unknown(), types.StringUnknown()
	}
	plan.Ref = versionRef(&plan)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *NamedStateResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan namedStateResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultWriteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	project, name := plan.Project.ValueString(), plan.Name.ValueString()
	st, err := r.client.CreateState(ctx, project, name, plan.Description.ValueString())
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not create state "+project+"/"+name, err)
		return
	}
	plan.ID = types.StringValue(st.Project + "/" + st.Name)

	resp.Diagnostics.Append(r.syncGrants(ctx, project, name, plan.Access)...)
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(r.makeVersion(ctx, req.Config, &plan)...)
	}
	plan.Ref = versionRef(&plan)
	if resp.Diagnostics.HasError() {
		// Undo the half-made state, so the next apply starts clean instead
		// of meeting a protected, tainted state it may not replace.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.client.DeleteState(rctx, project, name); err != nil {
			resp.Diagnostics.AddWarning("Could not remove the partly created state",
				fmt.Sprintf("%s/%s was created but granting access or making its first version failed, and removing it failed too: %v. "+
					"Delete it on the platform or import it.", project, name, err))
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *NamedStateResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state namedStateResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, name := state.Project.ValueString(), state.Name.ValueString()
	st, err := r.client.GetState(ctx, project, name)
	if errors.Is(err, client.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read state "+project+"/"+name, err)
		return
	}
	state.ID = types.StringValue(st.Project + "/" + st.Name)
	state.Description = types.StringValue(st.Description)

	grants, err := r.client.ListGrants(ctx, project, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the grants on "+project+"/"+name, err)
		return
	}
	var diags diag.Diagnostics
	state.Access, diags = grantSet(ctx, grants, state.Access.IsNull())
	resp.Diagnostics.Append(diags...)

	if !state.VersionDigest.IsNull() {
		v, err := r.client.GetVersion(ctx, project, name, state.VersionDigest.ValueString())
		switch {
		case errors.Is(err, client.ErrNotFound):
			// The version made from these sources is gone: forget the hash
			// so the next plan makes it again.
			state.ContentHash, state.VersionTag, state.VersionDigest = types.StringNull(), types.StringNull(), types.StringNull()
			state.Size, state.CreatedAt = types.Int64Null(), types.StringNull()
		case err != nil:
			addClientError(&resp.Diagnostics, "Could not read the version of "+project+"/"+name, err)
			return
		default:
			setVersion(&state, v)
		}
	}
	state.Ref = versionRef(&state)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *NamedStateResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state namedStateResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultWriteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	project, name := plan.Project.ValueString(), plan.Name.ValueString()
	if !plan.Description.Equal(state.Description) {
		if _, err := r.client.UpdateState(ctx, project, name, plan.Description.ValueString()); err != nil {
			addClientError(&resp.Diagnostics, "Could not update state "+project+"/"+name, err)
			return
		}
	}
	if !plan.Access.Equal(state.Access) {
		resp.Diagnostics.Append(r.syncGrants(ctx, project, name, plan.Access)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if plan.VersionDigest.IsUnknown() {
		if d := r.makeVersion(ctx, req.Config, &plan); d.HasError() {
			resp.Diagnostics.Append(d...)
			// Keep what did change and the previous version, so the next
			// plan still shows the sources as changed and tries again.
			kept := plan
			kept.ContentHash, kept.VersionTag, kept.VersionDigest = state.ContentHash, state.VersionTag, state.VersionDigest
			kept.Size, kept.CreatedAt = state.Size, state.CreatedAt
			kept.Ref = versionRef(&kept)
			resp.Diagnostics.Append(resp.State.Set(ctx, &kept)...)
			return
		}
	}
	plan.Ref = versionRef(&plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *NamedStateResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state namedStateResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// ModifyPlan already refuses this; a state from an older provider or a
	// -refresh=false run must not slip through.
	if state.DeletionProtection.ValueBool() {
		resp.Diagnostics.AddError("State is protected from deletion",
			fmt.Sprintf("Destroying %s would delete every version of it. Set deletion_protection = false and apply first.", state.ID.ValueString()))
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.client.DeleteState(ctx, state.Project.ValueString(), state.Name.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, "Could not delete state "+state.ID.ValueString(), err)
	}
}

func (r *NamedStateResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importProjectName(ctx, req, resp, "named state")
	// An imported state is protected like a created one until the
	// configuration says otherwise.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("deletion_protection"), true)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("tag"), "@random")...) // the default
	if resp.Diagnostics.HasError() {
		return
	}
	// Adopt the newest version when it says which sources it was made
	// from: if the configured sources hash the same, the plan makes none.
	project, name, _ := strings.Cut(req.ID, "/")
	v, hash, err := r.importedVersion(ctx, project, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read the newest version of "+req.ID, err)
		return
	}
	if hash == "" {
		return
	}
	var m namedStateResourceModel
	setVersion(&m, v)
	for p, val := range map[string]attr.Value{"content_hash": types.StringValue(hash), "version_tag": m.VersionTag,
		"version_digest": m.VersionDigest, "size": m.Size, "created_at": m.CreatedAt} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(p), val)...)
	}
}

// syncGrants makes the state-scoped grants on the platform equal to the
// configured access set: missing or changed grants are put, others deleted.
func (r *NamedStateResource) syncGrants(ctx context.Context, project, name string, access types.Set) diag.Diagnostics {
	var diags diag.Diagnostics
	var want []grantModel
	if !access.IsNull() && !access.IsUnknown() {
		diags.Append(access.ElementsAs(ctx, &want, false)...)
		if diags.HasError() {
			return diags
		}
	}
	have, err := r.client.ListGrants(ctx, project, name)
	if err != nil {
		addClientError(&diags, "Could not list the grants on "+project+"/"+name, err)
		return diags
	}
	wanted := make(map[string]string, len(want))
	for _, g := range want {
		wanted[g.Subject.ValueString()] = g.Role.ValueString()
	}
	current := make(map[string]string, len(have))
	for _, g := range have {
		if g.State != "" {
			current[g.Subject] = g.Role
		}
	}
	for subject := range current {
		if _, keep := wanted[subject]; keep {
			continue
		}
		if err := r.client.DeleteGrant(ctx, project, name, subject); err != nil && !errors.Is(err, client.ErrNotFound) {
			addClientError(&diags, fmt.Sprintf("Could not revoke %s on %s/%s", subject, project, name), err)
			return diags
		}
	}
	for subject, role := range wanted {
		if current[subject] == role {
			continue
		}
		if _, err := r.client.PutGrant(ctx, project, name, subject, role); err != nil {
			addClientError(&diags, fmt.Sprintf("Could not grant %s to %s on %s/%s", role, subject, project, name), err)
			return diags
		}
	}
	return diags
}

// componentSource is one configured source: a local path or a live URL.
type componentSource struct {
	Name, Kind, Path, URL string
}

// componentSources lists the configured sources in block order. known is
// false when a name, kind, path or URL is not known until apply.
func componentSources(ctx context.Context, list types.List) ([]componentSource, bool, diag.Diagnostics) {
	if list.IsUnknown() {
		return nil, false, nil
	}
	var comps []componentModel
	diags := listElements(ctx, list, &comps)
	if diags.HasError() {
		return nil, false, diags
	}
	sources := make([]componentSource, 0, len(comps))
	for _, c := range comps {
		if c.Source == nil {
			continue // objectvalidator.IsRequired reports it
		}
		if c.Name.IsUnknown() || c.Kind.IsUnknown() || c.Source.Path.IsUnknown() || c.Source.URL.IsUnknown() {
			return nil, false, diags
		}
		sources = append(sources, componentSource{Name: c.Name.ValueString(), Kind: c.Kind.ValueString(),
			Path: c.Source.Path.ValueString(), URL: c.Source.URL.ValueString()})
	}
	return sources, true, diags
}

// hashSources says what the content hash covers: local paths are read,
// live URLs only count as live (their value is a secret and says nothing
// about the content).
func hashSources(srcs []componentSource) []contenthash.Source {
	out := make([]contenthash.Source, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, contenthash.Source{Name: s.Name, Kind: s.Kind, Path: s.Path, Live: s.URL != ""})
	}
	return out
}

// grantSet converts the state-scoped grants into the `access` set.
func grantSet(ctx context.Context, gs []client.Grant, nullWhenEmpty bool) (types.Set, diag.Diagnostics) {
	elemType := types.ObjectType{AttrTypes: grantAttrTypes}
	out := make([]grantModel, 0, len(gs))
	for _, g := range gs {
		if g.State != "" {
			out = append(out, grantModel{Subject: types.StringValue(g.Subject), Role: types.StringValue(g.Role)})
		}
	}
	if len(out) == 0 && nullWhenEmpty {
		return types.SetNull(elemType), nil
	}
	return types.SetValueFrom(ctx, elemType, out)
}

// versionRef is the `ref` of m: the version made from its sources, unknown
// while that version is still to be made, the state's name when Terraform
// makes no versions of it.
func versionRef(m *namedStateResourceModel) types.String {
	switch {
	case m.Project.IsUnknown() || m.Name.IsUnknown() || m.VersionDigest.IsUnknown():
		return types.StringUnknown()
	case m.VersionDigest.IsNull():
		return types.StringValue(m.Project.ValueString() + "/" + m.Name.ValueString())
	default:
		return types.StringValue(m.Project.ValueString() + "/" + m.Name.ValueString() + "@" + m.VersionDigest.ValueString())
	}
}

// setVersion records a version's identity in the model.
func setVersion(m *namedStateResourceModel, v client.Version) {
	m.VersionTag = types.StringValue(v.Tag)
	m.VersionDigest = types.StringValue(v.Digest)
	m.Size = types.Int64Value(v.Size)
	m.CreatedAt = types.StringValue(v.CreatedAt.UTC().Format(time.RFC3339))
}

// uniqueComponentNames reports a component name used twice, on the second
// block's name.
type uniqueComponentNames struct{}

var _ validator.List = uniqueComponentNames{}

func (uniqueComponentNames) Description(context.Context) string {
	return "component names must be unique"
}

func (v uniqueComponentNames) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (uniqueComponentNames) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	seen := map[string]int{}
	for i, e := range req.ConfigValue.Elements() {
		obj, ok := e.(types.Object)
		if !ok || obj.IsNull() || obj.IsUnknown() {
			continue
		}
		n, ok := obj.Attributes()["name"].(types.String)
		if !ok || n.IsNull() || n.IsUnknown() {
			continue
		}
		if j, dup := seen[n.ValueString()]; dup {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i).AtName("name"), "Duplicate component name",
				fmt.Sprintf("Component %q is already declared by block %d; each component needs a unique name.", n.ValueString(), j))
			continue
		}
		seen[n.ValueString()] = i
	}
}
