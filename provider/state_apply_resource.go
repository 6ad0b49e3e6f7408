package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                   = &StateApplyResource{}
	_ resource.ResourceWithConfigure      = &StateApplyResource{}
	_ resource.ResourceWithModifyPlan     = &StateApplyResource{}
	_ resource.ResourceWithImportState    = &StateApplyResource{}
	_ resource.ResourceWithValidateConfig = &StateApplyResource{}
)

// What destroying an apply does to the data.
const (
	onDestroyKeep     = "keep"
	onDestroyRollback = "rollback"
)

// NewStateApplyResource is the factory of `unikube_state_apply`.
func NewStateApplyResource() resource.Resource { return &StateApplyResource{} }

// StateApplyResource applies a version of a named state to endpoints the
// provider can reach (the local executor).
type StateApplyResource struct {
	client      *client.Client
	kube        KubernetesConfig
	caConfigMap string
}

// stateApplyResourceModel is the state and plan of `unikube_state_apply`.
type stateApplyResourceModel struct {
	ID          types.String   `tfsdk:"id"`
	State       types.String   `tfsdk:"state"`
	Strategy    types.String   `tfsdk:"strategy"`
	Endpoints   types.List     `tfsdk:"endpoint"`
	Kubernetes  types.Object   `tfsdk:"kubernetes"`
	OnDestroy   types.String   `tfsdk:"on_destroy"`
	Triggers    types.Map      `tfsdk:"reapply_triggers"`
	Components  types.List     `tfsdk:"components"`
	Record      types.Int64    `tfsdk:"record"`
	PreScripts  types.List     `tfsdk:"pre_script"`
	PostScripts types.List     `tfsdk:"post_script"`
	Digest      types.String   `tfsdk:"digest"`
	VersionTag  types.String   `tfsdk:"version_tag"`
	RestorePlan types.List     `tfsdk:"restore_plan"`
	Results     types.List     `tfsdk:"results"`
	AppliedAt   types.String   `tfsdk:"applied_at"`
	Timeouts    timeouts.Value `tfsdk:"timeouts"`
}

// endpointModel is one `endpoint` block. URL is write-only: it usually holds
// a password, so it is never stored in the state.
type endpointModel struct {
	Component types.String `tfsdk:"component"`
	URL       types.String `tfsdk:"url"`
	Options   types.Map    `tfsdk:"options"`
}

// restorePlanModel is one component of `restore_plan`.
type restorePlanModel struct {
	Component types.String `tfsdk:"component"`
	Kind      types.String `tfsdk:"kind"`
	Target    types.String `tfsdk:"target"`
	Action    types.String `tfsdk:"action"`
	Reason    types.String `tfsdk:"reason"`
	Strategy  types.String `tfsdk:"strategy"`
	Atomic    types.Bool   `tfsdk:"atomic"`
	Bytes     types.Int64  `tfsdk:"bytes"`
	Files     types.Int64  `tfsdk:"files"`
}

var restorePlanAttrTypes = map[string]attr.Type{
	"component": types.StringType,
	"kind":      types.StringType,
	"target":    types.StringType,
	"action":    types.StringType,
	"reason":    types.StringType,
	"strategy":  types.StringType,
	"atomic":    types.BoolType,
	"bytes":     types.Int64Type,
	"files":     types.Int64Type,
}

// resultModel is one component of `results`.
type resultModel struct {
	Component     types.String `tfsdk:"component"`
	Action        types.String `tfsdk:"action"`
	Strategy      types.String `tfsdk:"strategy"`
	Duration      types.String `tfsdk:"duration"`
	Bytes         types.Int64  `tfsdk:"bytes"`
	ChunksFetched types.Int64  `tfsdk:"chunks_fetched"`
	FilesWritten  types.Int64  `tfsdk:"files_written"`
}

var resultAttrTypes = map[string]attr.Type{
	"component":      types.StringType,
	"action":         types.StringType,
	"strategy":       types.StringType,
	"duration":       types.StringType,
	"bytes":          types.Int64Type,
	"chunks_fetched": types.Int64Type,
	"files_written":  types.Int64Type,
}

func (r *StateApplyResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_state_apply"
}

func (r *StateApplyResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Applies a version of a named state, either to services the provider can reach (`endpoint` " +
			"blocks: PostgreSQL, MySQL, Redis, directories) or inside a Kubernetes namespace next to the data (a `kubernetes` " +
			"block: the in-cluster executor). The plan resolves `state` to a digest and checks what the targets hold (the " +
			"endpoints themselves, or the namespace's apply record), so it shows which version will land and what each " +
			"component will do (`restore_plan`); a new `@latest`, or a target someone wiped or re-seeded with another " +
			"version, shows as a change. Destroying it forgets the apply and leaves the data in place, unless " +
			"`on_destroy = \"rollback\"`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`namespace/release` of a `kubernetes` target (the release its records are named after), " +
					"unique per target and the ID to import it by; `project/state` of the applied state for `endpoint` targets.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"state": schema.StringAttribute{
				MarkdownDescription: "Reference of the version to apply: `shop/seed` (the newest version), `shop/seed:v1.2`, " +
					"`shop/seed:@candidate` or `shop/seed@sha256:...`. It is resolved at plan time.",
				Required:   true,
				Validators: []validator.String{validators.Reference()},
			},
			"strategy": schema.StringAttribute{
				MarkdownDescription: "How databases are replaced: `swap` (the default: restore into a new database and swap names, " +
					"so a failed apply leaves the old data) or `in-place` (restore over the existing database; needs no spare space, not atomic).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf("swap", "in-place")},
			},
			"digest": schema.StringAttribute{
				MarkdownDescription: "Digest of the version `state` resolved to at plan time.",
				Computed:            true,
			},
			"version_tag": schema.StringAttribute{
				MarkdownDescription: "Tag of the version `state` resolved to at plan time.",
				Computed:            true,
			},
			"restore_plan": schema.ListNestedAttribute{
				MarkdownDescription: "What the apply does (or did) to each component, worked out at plan time.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"component": schema.StringAttribute{MarkdownDescription: "Component name.", Computed: true},
					"kind":      schema.StringAttribute{MarkdownDescription: "Component kind.", Computed: true},
					"target":    schema.StringAttribute{MarkdownDescription: "Target URL without its password.", Computed: true},
					"action":    schema.StringAttribute{MarkdownDescription: "`create`, `replace`, `incremental` or `skip` (already holds this version).", Computed: true},
					"reason":    schema.StringAttribute{MarkdownDescription: "Why the action was chosen.", Computed: true},
					"strategy":  schema.StringAttribute{MarkdownDescription: "How the data is swapped in, e.g. `swap` or `staging-rename`.", Computed: true},
					"atomic":    schema.BoolAttribute{MarkdownDescription: "Whether a failed apply leaves the previous data in place.", Computed: true},
					"bytes":     schema.Int64Attribute{MarkdownDescription: "Bytes of the component's data to fetch.", Computed: true},
					"files":     schema.Int64Attribute{MarkdownDescription: "Files to write (volumes).", Computed: true},
				}},
			},
			"results": schema.ListNestedAttribute{
				MarkdownDescription: "What the last apply did to each component.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"component":      schema.StringAttribute{MarkdownDescription: "Component name.", Computed: true},
					"action":         schema.StringAttribute{MarkdownDescription: "Action taken.", Computed: true},
					"strategy":       schema.StringAttribute{MarkdownDescription: "Strategy used.", Computed: true},
					"duration":       schema.StringAttribute{MarkdownDescription: "How long the component took, e.g. `1.2s`.", Computed: true},
					"bytes":          schema.Int64Attribute{MarkdownDescription: "Bytes of data read.", Computed: true},
					"chunks_fetched": schema.Int64Attribute{MarkdownDescription: "Chunks downloaded from the platform.", Computed: true},
					"files_written":  schema.Int64Attribute{MarkdownDescription: "Files written (volumes).", Computed: true},
				}},
			},
			"applied_at": schema.StringAttribute{
				MarkdownDescription: "When the version was last applied (RFC 3339).",
				Computed:            true,
			},
			"record": schema.Int64Attribute{
				MarkdownDescription: "Kubernetes targets: revision of the record Secret (`unikube.state.v1.<release>.v<N>`) the last apply wrote.",
				Computed:            true,
			},
			"on_destroy": schema.StringAttribute{
				MarkdownDescription: "What destroying this resource does to the data: `keep` (the default) leaves it as it is; " +
					"`rollback` re-applies the version the namespace held before (the previous successful record of the release). " +
					"Rollback needs a `kubernetes` target: local endpoints' URLs are write-only, so they are not available at destroy " +
					"time, and the restore core keeps no version marker for the `_unikube_prev` copies it leaves.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(onDestroyKeep),
				Validators: []validator.String{stringvalidator.OneOf(onDestroyKeep, onDestroyRollback)},
			},
			"reapply_triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values; any change re-applies the version even when the targets already hold it " +
					"(like `terraform_data`'s `triggers_replace`), e.g. `{ reset = \"2\" }` to reset a database dirtied by a test run. " +
					"The targets' markers are not trusted for that apply: every component (of `components`) is restored again.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"components": schema.ListAttribute{
				MarkdownDescription: "Kubernetes targets: apply only these components of the version; the others are neither " +
					"restored nor quiesced. Default: every component.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.UniqueValues(), listvalidator.SizeAtLeast(1)},
			},
		},
		Blocks: map[string]schema.Block{
			"endpoint": schema.ListNestedBlock{
				MarkdownDescription: "Where a component of the state is restored to (the local executor). Every component of the version needs one. Conflicts with `kubernetes`.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"component": schema.StringAttribute{
						MarkdownDescription: "Name of the component, e.g. `db`.",
						Required:            true,
						Validators:          []validator.String{validators.DNSName()},
					},
					"url": schema.StringAttribute{
						MarkdownDescription: "Target of the component: `postgres://user:password@host:5432/db`, `mysql://...`, " +
							"`redis://host:6379/0` or `file:///path/to/dir`. Write-only: it never reaches the state. Requires Terraform 1.11 or later.",
						Required:   true,
						Sensitive:  true,
						WriteOnly:  true,
						Validators: []validator.String{validators.EndpointURL()},
					},
					"options": schema.MapAttribute{
						MarkdownDescription: "Driver options for this target (see manual/drivers.md), e.g. `{ role = \"app\", jobs = \"4\" }` for PostgreSQL " +
							"or `{ spare_db = \"15\" }` for Redis.",
						ElementType: types.StringType,
						Optional:    true,
					},
				}},
			},
			"kubernetes":  kubernetesBlock(),
			"pre_script":  scriptBlock("before anything is restored (a failure leaves the targets as they were)"),
			"post_script": scriptBlock("after a successful restore"),
			"timeouts":    timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *StateApplyResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client, r.kube, r.caConfigMap = pd.client, pd.kubernetes, pd.caConfigMap
	}
}

// ModifyPlan resolves the reference and asks every target what it holds, so
// the plan shows a change exactly when the apply would change data.
func (r *StateApplyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.client == nil {
		return
	}
	var plan, config stateApplyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *stateApplyResourceModel
	if !req.State.Raw.IsNull() {
		state = &stateApplyResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	resp.Diagnostics.Append(r.planScripts(ctx, req.Config, config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state == nil {
		// A create restores every component, even one already holding the
		// version (that is what -replace asks for): say so where the plan
		// shows what the targets hold.
		defer warnCreateRestoresAgain(ctx, resp)
	}
	if !config.Kubernetes.IsNull() {
		r.modifyPlanKubernetes(ctx, resp, &plan, config, state)
		return
	}
	targets, known, diags := applyTargets(ctx, config.Endpoints, plan.Strategy)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.State.IsUnknown() || !known {
		markApplyUnknown(&plan)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	ap, v, diags := r.restorePlan(ctx, plan.State.ValueString(), targets, triggersChanged(state, &plan))
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state != nil && !ap.Changes() && state.Digest.ValueString() == v.Digest {
		// Every target already holds this version: nothing to do.
		plan.ID, plan.Digest, plan.VersionTag = state.ID, state.Digest, state.VersionTag
		plan.RestorePlan, plan.Results, plan.AppliedAt = state.RestorePlan, state.Results, state.AppliedAt
		plan.Record = types.Int64Null()
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	plan.Record = types.Int64Null()
	plan.ID = types.StringValue(v.Project + "/" + v.State)
	plan.Digest = types.StringValue(v.Digest)
	plan.VersionTag = types.StringValue(v.Tag)
	plan.RestorePlan, diags = restorePlanList(ctx, ap)
	resp.Diagnostics.Append(diags...)
	plan.Results = types.ListUnknown(types.ObjectType{AttrTypes: resultAttrTypes})
	plan.AppliedAt = types.StringUnknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *StateApplyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan stateApplyResourceModel
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
	// A create forces like a reapply_triggers change: `terraform apply
	// -replace` must restore again even though the markers match.
	resp.Diagnostics.Append(r.apply(ctx, req.Config, &plan, true)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// warnCreateRestoresAgain adds a plan warning when the plan of a create
// shows components that already hold the version: Create restores them
// anyway.
func warnCreateRestoresAgain(ctx context.Context, resp *resource.ModifyPlanResponse) {
	if resp.Diagnostics.HasError() {
		return
	}
	var items types.List
	if resp.Plan.GetAttribute(ctx, path.Root("restore_plan"), &items).HasError() {
		return
	}
	var rp []restorePlanModel
	if listElements(ctx, items, &rp).HasError() {
		return
	}
	var held []string
	for _, it := range rp {
		if it.Action.ValueString() == "skip" {
			held = append(held, it.Component.ValueString())
		}
	}
	if len(held) > 0 {
		resp.Diagnostics.AddWarning("Creating the apply restores every component again",
			fmt.Sprintf("Component(s) %s already hold this version (restore_plan says skip), but creating or replacing "+
				"unikube_state_apply restores them again. To adopt what the target holds without restoring, import the resource instead.",
				strings.Join(held, ", ")))
	}
}

// Read refreshes an in-cluster apply from the namespace's record Secret.
// Local targets' URLs are write-only, so what they hold is checked at plan
// time (ModifyPlan), where the configuration is available.
func (r *StateApplyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state stateApplyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !state.Kubernetes.IsNull() {
		resp.Diagnostics.Append(r.readKubernetes(ctx, &state, r.kube)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *StateApplyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan stateApplyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
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
	var state stateApplyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.AppliedAt.IsUnknown() {
		resp.Diagnostics.Append(r.apply(ctx, req.Config, &plan, triggersChanged(&state, &plan))...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete forgets the apply; the data stays where it was restored, unless
// on_destroy asks to roll the namespace back to its previous version.
func (r *StateApplyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state stateApplyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.OnDestroy.ValueString() != onDestroyRollback || state.Kubernetes.IsNull() {
		tflog.Info(ctx, "forgetting the apply; restored data is left in place")
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultWriteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp.Diagnostics.Append(r.rollbackKubernetes(ctx, &state, r.kube, timeout)...)
}

// ValidateConfig checks what single-attribute validators cannot: exactly one
// kind of target, and the kubernetes block's combinations.
func (r *StateApplyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var config stateApplyResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	endpoints := !config.Endpoints.IsUnknown() && len(config.Endpoints.Elements()) > 0
	kube := !config.Kubernetes.IsNull()
	switch {
	case endpoints && kube:
		resp.Diagnostics.AddAttributeError(path.Root("kubernetes"), "Conflicting targets",
			"Apply either to endpoint blocks (services the provider reaches) or into a kubernetes namespace, not both; use two unikube_state_apply resources.")
	case !endpoints && !kube && !config.Endpoints.IsUnknown():
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing target",
			"Add endpoint blocks (one per component) or a kubernetes block saying where to apply the state.")
	}
	if kube {
		validateKubernetes(ctx, config.Kubernetes, config.OnDestroy, &resp.Diagnostics)
	}
	if endpoints && !config.Components.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("components"), "Components need a kubernetes target",
			"components picks what an in-cluster apply restores; with endpoint blocks, list only the components to restore.")
	}
	if endpoints && config.OnDestroy.ValueString() == onDestroyRollback {
		resp.Diagnostics.AddAttributeError(path.Root("on_destroy"), "Rollback needs a kubernetes target",
			"on_destroy = \"rollback\" re-applies the namespace's previous record; endpoint targets have no record and their URLs "+
				"are write-only, so destroy cannot reach them. Use on_destroy = \"keep\" or a kubernetes block.")
	}
}

// apply restores the planned digest (not the reference again: the version
// the plan showed is the one that lands) and records the results in plan.
func (r *StateApplyResource) apply(ctx context.Context, cfg interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, plan *stateApplyResourceModel, force bool) diag.Diagnostics {
	var diags diag.Diagnostics
	var kube types.Object
	diags.Append(cfg.GetAttribute(ctx, path.Root("kubernetes"), &kube)...)
	if diags.HasError() {
		return diags
	}
	if !kube.IsNull() {
		return r.applyKubernetesConfig(ctx, cfg, kube, plan, force)
	}
	pre, d := decodeScripts(ctx, cfg, "pre_script", nil, r.kube)
	diags.Append(d...)
	post, d := decodeScripts(ctx, cfg, "post_script", nil, r.kube)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	var endpoints types.List
	diags.Append(cfg.GetAttribute(ctx, path.Root("endpoint"), &endpoints)...)
	if diags.HasError() {
		return diags
	}
	targets, _, d := applyTargets(ctx, endpoints, plan.Strategy)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	ref, err := statepkg.ParseRef(plan.State.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("state"), "Invalid state reference", err.Error())
		return diags
	}
	var ap *restore.ApplyPlan
	if plan.Digest.IsUnknown() {
		// The reference depended on something made in this apply (e.g. a
		// new version of a unikube_named_state): resolve it now.
		var v client.Version
		ap, v, d = r.restorePlan(ctx, plan.State.ValueString(), targets, force)
		diags.Append(d...)
		if diags.HasError() {
			return diags
		}
		plan.ID = types.StringValue(v.Project + "/" + v.State)
		plan.Digest, plan.VersionTag = types.StringValue(v.Digest), types.StringValue(v.Tag)
		plan.RestorePlan, d = restorePlanList(ctx, ap)
		diags.Append(d...)
	} else {
		digest := plan.Digest.ValueString()
		m, _, err := r.client.GetManifest(ctx, ref.Project, ref.State, digest)
		if err != nil {
			addClientError(&diags, fmt.Sprintf("Could not download the manifest of %s@%s", ref.StateName(), digest), err)
			return diags
		}
		ap, err = restore.Plan(ctx, m, digest, targets, r.client.Chunks(ref.Project, ref.State), restore.PlanOptions{Force: force})
		if err != nil {
			diags.AddAttributeError(path.Root("endpoint"), "Could not plan the restore", err.Error())
			return diags
		}
	}
	digest := plan.Digest.ValueString()
	if diags.Append(r.runScripts(ctx, "pre", pre)...); diags.HasError() {
		return diags
	}
	res, err := restore.Apply(ctx, ap, restore.ApplyOptions{
		Progress: func(e restore.Event) {
			for _, c := range e.Components {
				tflog.Info(ctx, "restore progress", map[string]any{
					"component": c.Component, "phase": c.Phase, "bytes": c.Bytes, "total_bytes": c.TotalBytes, "done": c.Done,
				})
			}
		},
	})
	if err != nil {
		diags.AddError(fmt.Sprintf("Could not apply %s@%s", ref.StateName(), digest),
			err.Error()+"\n\nComponents that failed were left as they were before the apply.")
		return diags
	}
	out := make([]resultModel, 0, len(res.Components))
	for _, c := range res.Components {
		out = append(out, resultModel{
			Component:     types.StringValue(c.Component),
			Action:        types.StringValue(string(c.Action)),
			Strategy:      types.StringValue(c.Strategy),
			Duration:      types.StringValue(c.Duration.Round(time.Millisecond).String()),
			Bytes:         types.Int64Value(c.Bytes),
			ChunksFetched: types.Int64Value(c.ChunksFetched),
			FilesWritten:  types.Int64Value(c.FilesWritten),
		})
	}
	plan.Results, d = objectList(ctx, out, resultAttrTypes, false)
	diags.Append(d...)
	plan.AppliedAt = types.StringValue(res.StartedAt.UTC().Format(time.RFC3339))
	plan.Record = types.Int64Null()
	diags.Append(r.runScripts(ctx, "post", post)...)
	return diags
}

// restorePlan resolves ref and plans restoring it to targets.
func (r *StateApplyResource) restorePlan(ctx context.Context, refStr string, targets restore.Targets, force bool) (*restore.ApplyPlan, client.Version, diag.Diagnostics) {
	var diags diag.Diagnostics
	ref, err := statepkg.ParseRef(refStr)
	if err != nil {
		diags.AddAttributeError(path.Root("state"), "Invalid state reference", err.Error())
		return nil, client.Version{}, diags
	}
	v, err := r.client.Resolve(ctx, ref)
	if err != nil {
		addClientError(&diags, "Could not resolve "+ref.String(), err)
		return nil, v, diags
	}
	m, _, err := r.client.GetManifest(ctx, ref.Project, ref.State, v.Digest)
	if err != nil {
		addClientError(&diags, fmt.Sprintf("Could not download the manifest of %s@%s", ref.StateName(), v.Digest), err)
		return nil, v, diags
	}
	ap, err := restore.Plan(ctx, m, v.Digest, targets, r.client.Chunks(ref.Project, ref.State), restore.PlanOptions{Force: force})
	if err != nil {
		diags.AddAttributeError(path.Root("endpoint"), "Could not plan the restore", err.Error())
		return nil, v, diags
	}
	return ap, v, diags
}

// applyTargets reads the endpoint blocks; known is false while a component
// name, URL, option or the strategy is unknown.
func applyTargets(ctx context.Context, list types.List, strategy types.String) (restore.Targets, bool, diag.Diagnostics) {
	if strategy.IsUnknown() {
		return nil, false, nil
	}
	if list.IsUnknown() {
		return nil, false, nil
	}
	var eps []endpointModel
	diags := listElements(ctx, list, &eps)
	targets := restore.Targets{}
	for i, e := range eps {
		if e.Component.IsUnknown() || e.URL.IsUnknown() || e.Options.IsUnknown() {
			return nil, false, diags
		}
		name := e.Component.ValueString()
		if _, dup := targets[name]; dup {
			diags.AddAttributeError(path.Root("endpoint").AtListIndex(i).AtName("component"), "Duplicate endpoint",
				fmt.Sprintf("Component %q already has an endpoint; each component is restored to one target.", name))
			continue
		}
		opts := map[string]string{}
		if !e.Options.IsNull() {
			diags.Append(e.Options.ElementsAs(ctx, &opts, false)...)
		}
		if !strategy.IsNull() {
			opts["strategy"] = strategy.ValueString()
		}
		targets[name] = driver.Target{URL: e.URL.ValueString(), Options: opts}
	}
	return targets, true, diags
}

func restorePlanList(ctx context.Context, ap *restore.ApplyPlan) (types.List, diag.Diagnostics) {
	out := make([]restorePlanModel, 0, len(ap.Components))
	for _, c := range ap.Components {
		out = append(out, restorePlanModel{
			Component: types.StringValue(c.Component),
			Kind:      types.StringValue(string(c.Kind)),
			Target:    types.StringValue(c.Target),
			Action:    types.StringValue(string(c.Action)),
			Reason:    types.StringValue(c.Reason),
			Strategy:  types.StringValue(c.Strategy),
			Atomic:    types.BoolValue(c.Atomic),
			Bytes:     types.Int64Value(c.Bytes),
			Files:     types.Int64Value(c.Files),
		})
	}
	return objectList(ctx, out, restorePlanAttrTypes, false)
}

func markApplyUnknown(m *stateApplyResourceModel) {
	m.Digest, m.VersionTag, m.AppliedAt = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	m.Record = types.Int64Unknown()
	m.RestorePlan = types.ListUnknown(types.ObjectType{AttrTypes: restorePlanAttrTypes})
	m.Results = types.ListUnknown(types.ObjectType{AttrTypes: resultAttrTypes})
}
