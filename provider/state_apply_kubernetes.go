package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/access"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

// kubernetesTargetModel is the `kubernetes` block of unikube_state_apply.
// Token is write-only: it is read from the configuration when needed and is
// null in the plan and the state.
type kubernetesTargetModel struct {
	Namespace            types.String `tfsdk:"namespace"`
	Release              types.String `tfsdk:"release"`
	Selector             types.String `tfsdk:"selector"`
	Quiesce              types.Bool   `tfsdk:"quiesce"`
	PlatformURL          types.String `tfsdk:"platform_url"`
	AgentImage           types.String `tfsdk:"agent_image"`
	ConfigPath           types.String `tfsdk:"config_path"`
	ConfigContext        types.String `tfsdk:"config_context"`
	Host                 types.String `tfsdk:"host"`
	Token                types.String `tfsdk:"token"`
	ClusterCACertificate types.String `tfsdk:"cluster_ca_certificate"`
	Mappings             types.List   `tfsdk:"mapping"`
	Hooks                types.Object `tfsdk:"hooks"`
	Substitutions        types.List   `tfsdk:"substitution"`
}

type mappingModel struct {
	Component types.String `tfsdk:"component"`
	Kind      types.String `tfsdk:"kind"`
	Name      types.String `tfsdk:"name"`
	Selector  types.String `tfsdk:"selector"`
	Container types.String `tfsdk:"container"`
	Database  types.String `tfsdk:"database"`
	User      types.String `tfsdk:"user"`
	PVC       types.String `tfsdk:"pvc"`
	Quiesce   types.List   `tfsdk:"quiesce"`
	Options   types.Map    `tfsdk:"options"`
	Resources types.Map    `tfsdk:"agent_resources"`
}

type hooksModel struct {
	Pre  types.List `tfsdk:"pre"`
	Post types.List `tfsdk:"post"`
}

type hookModel struct {
	Selector  types.String `tfsdk:"selector"`
	Container types.String `tfsdk:"container"`
	Command   types.List   `tfsdk:"command"`
	Timeout   types.String `tfsdk:"timeout"`
	OnError   types.String `tfsdk:"on_error"`
}

type substitutionModel struct {
	Kinds      types.List   `tfsdk:"kinds"`
	Names      types.List   `tfsdk:"names"`
	Selector   types.String `tfsdk:"selector"`
	Annotation types.String `tfsdk:"annotation"`
	Keys       types.List   `tfsdk:"keys"`
	EnvVar     types.String `tfsdk:"env_var"`
	Old        types.String `tfsdk:"old"`
	New        types.String `tfsdk:"new"`
}

// kubernetesTarget is the decoded `kubernetes` block with the provider's
// defaults applied: everything one in-cluster apply needs.
type kubernetesTarget struct {
	Namespace    string
	HelmRelease  string // the configured release ("" with selector)
	Release      string // names the record Secrets
	Selector     string // default selector of components without a mapping
	Quiesce      bool
	PlatformURL  string
	AgentImage   string
	Conn         access.Config
	Explicit     []discovery.Mapping
	Pre, Post    []hooks.Hook
	Substitution []substitution.Rule
}

func hookBlock(when string) schema.ListNestedBlock {
	return schema.ListNestedBlock{
		MarkdownDescription: "A command run in the app's pods " + when + ".",
		NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
			"selector": schema.StringAttribute{
				MarkdownDescription: "Label selector of the pods to run the command in (every running pod it matches), e.g. `app=web`.",
				Required:            true,
				Validators:          []validator.String{validators.LabelSelector()},
			},
			"container": schema.StringAttribute{
				MarkdownDescription: "Container to run the command in. Defaults to the pod's first container.",
				Optional:            true,
			},
			"command": schema.ListAttribute{
				MarkdownDescription: "Command and arguments, e.g. `[\"sh\", \"-c\", \"redis-cli FLUSHALL\"]`.",
				ElementType:         types.StringType,
				Required:            true,
			},
			"timeout": schema.StringAttribute{
				MarkdownDescription: "How long the command may run, a Go duration such as `30s` or `2m`. Defaults to `1m`.",
				Optional:            true,
				Validators:          []validator.String{validators.Duration()},
			},
			"on_error": schema.StringAttribute{
				MarkdownDescription: "What a failed command does: `fail` (the default) fails the apply, `continue` only logs it.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(hooks.OnErrorFail, hooks.OnErrorContinue)},
			},
		}},
	}
}

// kubernetesBlock is the schema of the in-cluster target.
func kubernetesBlock() schema.SingleNestedBlock {
	conn := func(what string) string {
		return what + " Overrides the provider's `kubernetes` block for this apply."
	}
	return schema.SingleNestedBlock{
		MarkdownDescription: "Apply inside a Kubernetes namespace, next to the data: the in-cluster executor finds each " +
			"component's workload, quiesces the workloads using the data, runs one agent Job per component, scales the " +
			"workloads back and writes a record Secret (`unikube.state.v1.<release>.v<N>`). The record is how the next " +
			"plan detects drift. The cluster is reached through this block's connection settings, else the provider's " +
			"`kubernetes` block, else `KUBECONFIG`. Conflicts with `endpoint`.",
		Attributes: map[string]schema.Attribute{
			"namespace": schema.StringAttribute{
				MarkdownDescription: "Namespace of the application.",
				Optional:            true, // required when the block is present: checked in ValidateConfig
				Validators:          []validator.String{validators.DNSName()},
			},
			"release": schema.StringAttribute{
				MarkdownDescription: "Helm release of the application. Components without a `mapping` are found among the " +
					"release's workloads read from Helm's release storage (the workload running that database, or the PVC of a " +
					"volume); without a Helm release record, by the label `app.kubernetes.io/instance=<release>`. The apply " +
					"records are named after it.",
				Optional:   true,
				Validators: []validator.String{validators.DNSName()},
			},
			"selector": schema.StringAttribute{
				MarkdownDescription: "Label selector finding the workloads of components without a `mapping`, instead of " +
					"`release`. Records are then named after the state (`seed` for `shop/seed`).",
				Optional:   true,
				Validators: []validator.String{validators.LabelSelector()},
			},
			"quiesce": schema.BoolAttribute{
				MarkdownDescription: "Scale the workloads using a component to zero while it is replaced, and back afterwards " +
					"(also after a failure). Defaults to `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"platform_url": schema.StringAttribute{
				MarkdownDescription: "URL of the platform server as the agent pods reach it, when it differs from the provider's `endpoint`.",
				Optional:            true,
			},
			"agent_image": schema.StringAttribute{
				MarkdownDescription: "Image of the agent for volume components and the agent binary. Defaults to the provider's `agent_image`, " +
					"else `" + executor.DefaultAgentRepository + "/unikube-agent:<provider version>`. It must be the provider's own version.",
				Optional: true,
			},
			"config_path":    schema.StringAttribute{MarkdownDescription: conn("Path to a kubeconfig file."), Optional: true},
			"config_context": schema.StringAttribute{MarkdownDescription: conn("Context of the kubeconfig."), Optional: true},
			"host":           schema.StringAttribute{MarkdownDescription: conn("URL of the Kubernetes API server."), Optional: true},
			"token": schema.StringAttribute{
				MarkdownDescription: conn("Bearer token for `host`. Write-only: it never reaches the state, so drift checks " +
					"on refresh and `on_destroy = \"rollback\"` need the provider's connection instead."),
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
			},
			"cluster_ca_certificate": schema.StringAttribute{MarkdownDescription: conn("PEM-encoded CA certificate of `host`."), Optional: true},
		},
		Blocks: map[string]schema.Block{
			"mapping": schema.ListNestedBlock{
				MarkdownDescription: "Where one component of the state lives, when `release`/`selector` alone cannot tell " +
					"(e.g. a release with both a PostgreSQL and a Redis workload).",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"component": schema.StringAttribute{MarkdownDescription: "Component of the state, e.g. `db`.", Required: true, Validators: []validator.String{validators.DNSName()}},
					"kind": schema.StringAttribute{
						MarkdownDescription: "Kind of the workload serving it: `StatefulSet` or `Deployment`. Set with `name`.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.OneOf("StatefulSet", "Deployment")},
					},
					"name":      schema.StringAttribute{MarkdownDescription: "Name of the workload. Set with `kind`.", Optional: true},
					"selector":  schema.StringAttribute{MarkdownDescription: "Label selector of the workload, instead of `kind` and `name`.", Optional: true, Validators: []validator.String{validators.LabelSelector()}},
					"container": schema.StringAttribute{MarkdownDescription: "Container of the database in the workload's pod. Defaults to the only or first one.", Optional: true},
					"database": schema.StringAttribute{
						MarkdownDescription: "Database (PostgreSQL, MySQL) or db number (Redis). Defaults to the container's environment (`POSTGRES_DB`, ...).",
						Optional:            true,
					},
					"user": schema.StringAttribute{MarkdownDescription: "Database user. Defaults to the container's environment, else the superuser.", Optional: true},
					"pvc":  schema.StringAttribute{MarkdownDescription: "PersistentVolumeClaim of a volume component. Defaults to the workload's only PVC.", Optional: true},
					"quiesce": schema.ListAttribute{
						MarkdownDescription: "More workloads to stop while this component is replaced, as `Kind/name` (e.g. `Deployment/web`).",
						ElementType:         types.StringType,
						Optional:            true,
					},
					"options": schema.MapAttribute{
						MarkdownDescription: "Driver options for this component (see manual/drivers.md), e.g. `{ jobs = \"4\" }`.",
						ElementType:         types.StringType,
						Optional:            true,
					},
					"agent_resources": schema.MapAttribute{
						MarkdownDescription: "CPU and memory of this component's agent Job, e.g. `{ cpu = \"500m\", memory = \"1Gi\" }`. " +
							"Keys: `cpu` and `memory` (request and limit), `requests.cpu`, `requests.memory`, `limits.cpu`, `limits.memory`. " +
							"What is not set keeps the defaults (requests `cpu=100m`, `memory=128Mi`; limits `cpu=1`, `memory=1Gi`), " +
							"which a namespace `ResourceQuota` demanding requests and limits admits. " +
							"The Job also takes the workload pod's `imagePullSecrets`, `nodeSelector`, tolerations, node affinity, " +
							"`priorityClassName` and user/group ids.",
						ElementType: types.StringType,
						Optional:    true,
					},
				}},
			},
			"hooks": schema.SingleNestedBlock{
				MarkdownDescription: "Commands run in the app's pods around the restore, e.g. a `CHECKPOINT` before or a cache flush after.",
				Blocks: map[string]schema.Block{
					"pre":  hookBlock("after the preflight checks and before anything is quiesced; a failure leaves everything unchanged"),
					"post": hookBlock("after the workloads are back, when the restore succeeded"),
				},
			},
			"substitution": schema.ListNestedBlock{
				MarkdownDescription: "Replace values in the ConfigMaps and Secrets of the state's `kubernetes` components as " +
					"they are restored, e.g. to clone a state captured in `staging` into `dev-alice`. Rules are checked at plan time.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"kinds":      schema.ListAttribute{MarkdownDescription: "`ConfigMap` and/or `Secret`; all when empty.", ElementType: types.StringType, Optional: true},
					"names":      schema.ListAttribute{MarkdownDescription: "Object names; all when empty.", ElementType: types.StringType, Optional: true},
					"selector":   schema.StringAttribute{MarkdownDescription: "Label selector of the objects.", Optional: true},
					"annotation": schema.StringAttribute{MarkdownDescription: "Annotation the objects carry: `key` or `key=value`.", Optional: true},
					"keys":       schema.ListAttribute{MarkdownDescription: "Data keys to rewrite; all when empty.", ElementType: types.StringType, Optional: true},
					"env_var":    schema.StringAttribute{MarkdownDescription: "Rewrite only this variable (a key of that name or `NAME=value` lines).", Optional: true},
					"old":        schema.StringAttribute{MarkdownDescription: "Value to replace.", Required: true, Sensitive: true},
					"new":        schema.StringAttribute{MarkdownDescription: "Replacement.", Required: true, Sensitive: true},
				}},
			},
		},
	}
}

// fullyKnown reports whether v and everything inside it is known.
func fullyKnown(ctx context.Context, v attr.Value) bool {
	tv, err := v.ToTerraformValue(ctx)
	return err == nil && tv.IsFullyKnown()
}

// decodeKubernetes turns the block into a target. Decoded from the
// configuration it carries the write-only token; from the plan or the state
// it has none. ref names the records when neither release nor selector does.
func decodeKubernetes(ctx context.Context, obj types.Object, def KubernetesConfig, ref statepkg.Ref) (*kubernetesTarget, diag.Diagnostics) {
	var diags diag.Diagnostics
	root := path.Root("kubernetes")
	var m kubernetesTargetModel
	diags.Append(obj.As(ctx, &m, basetypes.ObjectAsOptions{})...)
	if diags.HasError() {
		return nil, diags
	}
	t := &kubernetesTarget{
		Namespace:   m.Namespace.ValueString(),
		Release:     m.Release.ValueString(),
		Quiesce:     m.Quiesce.IsNull() || m.Quiesce.ValueBool(),
		PlatformURL: m.PlatformURL.ValueString(),
		AgentImage:  m.AgentImage.ValueString(),
	}
	switch {
	case t.Release != "":
		t.HelmRelease = t.Release
	case !m.Selector.IsNull():
		t.Selector = m.Selector.ValueString()
		t.Release = ref.State
	default:
		t.Release = ref.State
	}
	t.Conn = connection(m, def)
	if t.AgentImage == "" {
		t.AgentImage = def.AgentImage // the provider's; the executor's default when empty too
	}

	var maps []mappingModel
	diags.Append(listElements(ctx, m.Mappings, &maps)...)
	for i, mm := range maps {
		p := root.AtName("mapping").AtListIndex(i)
		dm := discovery.Mapping{
			Component: mm.Component.ValueString(),
			Selector:  mm.Selector.ValueString(),
			Container: mm.Container.ValueString(),
			Database:  mm.Database.ValueString(),
			User:      mm.User.ValueString(),
			PVC:       mm.PVC.ValueString(),
		}
		if !mm.Kind.IsNull() {
			dm.Workload = mm.Kind.ValueString() + "/" + mm.Name.ValueString()
		}
		diags.Append(mm.Quiesce.ElementsAs(ctx, &dm.Quiesce, false)...)
		if !mm.Options.IsNull() {
			diags.Append(mm.Options.ElementsAs(ctx, &dm.Options, false)...)
		}
		if !mm.Resources.IsNull() {
			var rm map[string]string
			diags.Append(mm.Resources.ElementsAs(ctx, &rm, false)...)
			r, err := jobs.ResourcesFromMap(rm)
			if err != nil {
				diags.AddAttributeError(p.AtName("agent_resources"), "Invalid agent resources", err.Error())
			}
			dm.Resources = r
		}
		for _, e := range t.Explicit {
			if e.Component == dm.Component {
				diags.AddAttributeError(p.AtName("component"), "Duplicate mapping",
					fmt.Sprintf("Component %q already has a mapping; each component lives in one workload.", dm.Component))
			}
		}
		t.Explicit = append(t.Explicit, dm)
	}

	if !m.Hooks.IsNull() {
		var hm hooksModel
		diags.Append(m.Hooks.As(ctx, &hm, basetypes.ObjectAsOptions{})...)
		t.Pre = decodeHooks(ctx, "pre", hm.Pre, &diags)
		t.Post = decodeHooks(ctx, "post", hm.Post, &diags)
	}

	var subs []substitutionModel
	diags.Append(listElements(ctx, m.Substitutions, &subs)...)
	for i, s := range subs {
		r := substitution.Rule{Selector: s.Selector.ValueString(), Annotation: s.Annotation.ValueString(),
			EnvVar: s.EnvVar.ValueString(), Old: s.Old.ValueString(), New: s.New.ValueString()}
		diags.Append(s.Kinds.ElementsAs(ctx, &r.Kinds, false)...)
		diags.Append(s.Names.ElementsAs(ctx, &r.Names, false)...)
		diags.Append(s.Keys.ElementsAs(ctx, &r.Keys, false)...)
		if err := r.Validate(); err != nil {
			diags.AddAttributeError(root.AtName("substitution").AtListIndex(i), "Invalid substitution rule", err.Error())
		}
		t.Substitution = append(t.Substitution, r)
	}
	return t, diags
}

func decodeHooks(ctx context.Context, when string, l types.List, diags *diag.Diagnostics) []hooks.Hook {
	var hms []hookModel
	diags.Append(listElements(ctx, l, &hms)...)
	out := make([]hooks.Hook, 0, len(hms))
	for i, h := range hms {
		hk := hooks.Hook{
			Name:      fmt.Sprintf("%s-%d", when, i),
			Selector:  h.Selector.ValueString(),
			Container: h.Container.ValueString(),
			OnError:   h.OnError.ValueString(),
		}
		diags.Append(h.Command.ElementsAs(ctx, &hk.Command, false)...)
		if !h.Timeout.IsNull() {
			// The validator already refused a bad duration.
			hk.Timeout, _ = time.ParseDuration(h.Timeout.ValueString())
		}
		out = append(out, hk)
	}
	return out
}

// connection merges the block's overrides over the provider's default: a
// block that sets host (or a kubeconfig) replaces the default connection as
// a whole, so a host from one and a token from the other never mix.
func connection(m kubernetesTargetModel, def KubernetesConfig) access.Config {
	cfg := access.Config{Namespace: m.Namespace.ValueString()}
	switch {
	case !m.Host.IsNull():
		cfg.Host, cfg.Token, cfg.CAData = m.Host.ValueString(), m.Token.ValueString(), []byte(m.ClusterCACertificate.ValueString())
	case !m.ConfigPath.IsNull() || !m.ConfigContext.IsNull():
		cfg.Kubeconfig, cfg.Context = m.ConfigPath.ValueString(), m.ConfigContext.ValueString()
		if cfg.Kubeconfig == "" && def.Host == "" {
			cfg.Kubeconfig = def.ConfigPath
		}
	case def.Host != "":
		cfg.Host, cfg.Token, cfg.CAData = def.Host, def.Token, []byte(def.ClusterCACertificate)
	default:
		cfg.Kubeconfig, cfg.Context = def.ConfigPath, def.ConfigContext
	}
	if len(cfg.CAData) == 0 {
		cfg.CAData = nil
	}
	return cfg
}

// validateKubernetes checks the block as far as the configuration allows;
// every diagnostic names the attribute to fix.
func validateKubernetes(ctx context.Context, obj types.Object, onDestroy types.String, diags *diag.Diagnostics) {
	root := path.Root("kubernetes")
	var m kubernetesTargetModel
	if d := obj.As(ctx, &m, basetypes.ObjectAsOptions{UnhandledUnknownAsEmpty: true}); d.HasError() {
		return
	}
	if m.Namespace.IsNull() {
		diags.AddAttributeError(root.AtName("namespace"), "Missing namespace",
			"The kubernetes block needs the namespace of the application, e.g. namespace = \"shop-dev\".")
	}
	if !m.Release.IsNull() && !m.Selector.IsNull() {
		diags.AddAttributeError(root.AtName("selector"), "Conflicting workload selection",
			"Set either release (the Helm release's workloads) or selector, not both.")
	}
	if !m.Host.IsNull() && (!m.ConfigPath.IsNull() || !m.ConfigContext.IsNull()) {
		diags.AddAttributeError(root.AtName("host"), "Conflicting cluster connection",
			"Set either host (with token and cluster_ca_certificate) or config_path/config_context, not both.")
	}
	if !m.Token.IsNull() && m.Host.IsNull() {
		diags.AddAttributeError(root.AtName("token"), "Token without host",
			"token authenticates to host; set host too, or use a kubeconfig (config_path/config_context).")
	}
	if onDestroy.ValueString() == onDestroyRollback && !m.Token.IsNull() {
		diags.AddAttributeError(path.Root("on_destroy"), "Rollback needs a stored connection",
			"on_destroy = \"rollback\" runs at destroy time, when the write-only kubernetes.token is not available. "+
				"Put the cluster connection in the provider's kubernetes block or a kubeconfig.")
	}
	var maps []mappingModel
	if m.Mappings.IsNull() || m.Mappings.IsUnknown() || m.Mappings.ElementsAs(ctx, &maps, false).HasError() {
		return
	}
	for i, mm := range maps {
		p := root.AtName("mapping").AtListIndex(i)
		if mm.Kind.IsNull() != mm.Name.IsNull() {
			diags.AddAttributeError(p, "Incomplete workload", "Set kind and name together, e.g. kind = \"StatefulSet\" and name = \"db\".")
		}
		if !mm.Kind.IsNull() && !mm.Selector.IsNull() {
			diags.AddAttributeError(p.AtName("selector"), "Conflicting workload selection", "Name the workload (kind, name) or select it (selector), not both.")
		}
		var rm map[string]string
		if !mm.Resources.IsNull() && !mm.Resources.IsUnknown() && !mm.Resources.ElementsAs(ctx, &rm, false).HasError() {
			if _, err := jobs.ResourcesFromMap(rm); err != nil {
				diags.AddAttributeError(p.AtName("agent_resources"), "Invalid agent resources", err.Error())
			}
		}
		var qs []string
		if !mm.Quiesce.IsUnknown() && !mm.Quiesce.ElementsAs(ctx, &qs, false).HasError() {
			for j, q := range qs {
				if _, err := discovery.ParseWorkload(q); err != nil {
					diags.AddAttributeError(p.AtName("quiesce").AtListIndex(j), "Invalid workload", err.Error())
				}
			}
		}
	}
}

// connectHint explains a connection error with what to set.
func connectHint(err error) string {
	if errors.Is(err, access.ErrNoCluster) {
		return "No cluster connection is configured. Set config_path/config_context or host/token/cluster_ca_certificate " +
			"in the kubernetes block (or the provider's kubernetes block), or KUBECONFIG."
	}
	return err.Error() + "\n\nCheck the kubeconfig (KUBECONFIG, config_path, config_context) or host/token/cluster_ca_certificate."
}

// kubeApply is what an in-cluster apply needs besides the kubernetes
// block: the resource's strategy, component subset and force.
type kubeApply struct {
	strategy   string
	components []string
	force      bool
	// The pre_script/post_script blocks, run by the executor around the
	// apply (set only when applying: their variables are write-only).
	preScripts, postScripts []executor.Script
}

// kubeApplyOf reads the resource's attributes an in-cluster apply takes.
func kubeApplyOf(ctx context.Context, m *stateApplyResourceModel, force bool) (kubeApply, diag.Diagnostics) {
	ka := kubeApply{strategy: m.Strategy.ValueString(), force: force}
	var diags diag.Diagnostics
	if !m.Components.IsNull() && !m.Components.IsUnknown() {
		diags.Append(m.Components.ElementsAs(ctx, &ka.components, false)...)
	}
	return ka, diags
}

// triggersChanged says whether reapply_triggers changed from state to plan:
// the apply then re-restores even what already holds the version.
func triggersChanged(state, plan *stateApplyResourceModel) bool {
	return state != nil && plan != nil && !state.Triggers.Equal(plan.Triggers)
}

// planKube connects to the cluster and asks the executor for the plan of
// applying ref there; its errors are phrased in the block's terms.
func (r *StateApplyResource) planKube(ctx context.Context, t *kubernetesTarget, ref statepkg.Ref, ka kubeApply, timeout time.Duration) (*executor.Plan, diag.Diagnostics) {
	var diags diag.Diagnostics
	cl, err := access.Connect(t.Conn)
	if err != nil {
		diags.AddAttributeError(path.Root("kubernetes"), "Cannot reach the Kubernetes cluster", connectHint(err))
		return nil, diags
	}
	p, err := executor.PlanApply(ctx, executor.Request{
		Options: executor.Options{
			Client: cl.Client, RESTConfig: cl.REST, Namespace: t.Namespace,
			Platform: r.client, PlatformURL: t.PlatformURL,
			Ref: ref, Release: t.Release, Quiesce: t.Quiesce, Force: ka.force,
			AgentImage: t.AgentImage, Actor: "terraform", CAConfigMap: r.caConfigMap,
			PreHooks: t.Pre, PostHooks: t.Post, Substitutions: t.Substitution,
			Timeout: timeout,
			Logger:  slog.New(tflogHandler{ctx: ctx}),
		},
		HelmRelease: t.HelmRelease, Selector: t.Selector, Explicit: t.Explicit,
		Strategy: ka.strategy, Components: ka.components,
		PreScripts: ka.preScripts, PostScripts: ka.postScripts,
	})
	if err != nil {
		addKubePlanError(&diags, t, ref, err)
		return nil, diags
	}
	return p, diags
}

// addKubePlanError phrases the executor's planning errors for Terraform.
func addKubePlanError(diags *diag.Diagnostics, t *kubernetesTarget, ref statepkg.Ref, err error) {
	var (
		unmapped  *executor.UnmappedError
		unknown   *executor.UnknownComponentError
		duplicate *executor.DuplicateMappingError
		script    *executor.ScriptError
		hook      *executor.HookError
		unplaced  *discovery.MappingError
		explicit  *discovery.ExplicitMappingError
	)
	mapping := path.Root("kubernetes").AtName("mapping")
	switch {
	case errors.As(err, &unmapped):
		diags.AddAttributeError(mapping, "Components without a workload",
			fmt.Sprintf("%v: add mapping blocks, or set release or selector.", err))
	case errors.As(err, &unknown):
		at := path.Root("components")
		if slices.Contains(t.componentsOfMappings(), unknown.Component) {
			at = mapping
		}
		diags.AddAttributeError(at, "Unknown component", err.Error())
	case errors.As(err, &duplicate):
		diags.AddAttributeError(mapping, "Duplicate mapping", err.Error())
	case errors.As(err, &hook):
		diags.AddAttributeError(path.Root("kubernetes").AtName("hooks").AtName(hook.When).AtListIndex(hook.Index), "Invalid hook", err.Error())
	case errors.As(err, &script) && !errors.As(err, new(*scriptrun.ValidationError)):
		diags.AddAttributeError(path.Root(script.When+"_script").AtListIndex(script.Index).AtName("script"), "Could not read script "+script.Script, script.Err.Error())
	case errors.As(err, &script):
		diags.AddAttributeError(path.Root(script.When+"_script").AtListIndex(script.Index).AtName("variables"), "Invalid script variables",
			script.Err.Error()+". Set the script's variables in this block, e.g. variables = { NAME = \"value\" }.")
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden), errors.Is(err, client.ErrNotFound):
		addClientError(diags, "Could not resolve "+ref.String(), err)
	case errors.Is(err, rbac.ErrMissing):
		diags.AddAttributeError(path.Root("kubernetes").AtName("namespace"), "Missing Kubernetes permissions",
			fmt.Sprintf("%v. Nothing was read or changed.", err))
	case errors.As(err, &unplaced):
		diags.AddAttributeError(mapping, "Components without a workload", fmt.Sprintf("In namespace %s: %v. %s", t.Namespace, err, mappingHint(unplaced)))
	case errors.As(err, &explicit):
		diags.AddAttributeError(mapping, "Invalid mapping", fmt.Sprintf("In namespace %s: %v.", t.Namespace, err))
	case apierrors.IsForbidden(err):
		diags.AddAttributeError(path.Root("kubernetes").AtName("namespace"), "Cannot plan the apply",
			fmt.Sprintf("In namespace %s: %v. The provider's identity needs the rights of deploy/rbac/roles.yaml there.", t.Namespace, err))
	default:
		diags.AddAttributeError(path.Root("kubernetes"), "Cannot find the components' workloads",
			fmt.Sprintf("In namespace %s: %s. Add or fix a mapping block for the component.", t.Namespace, err))
	}
}

// mappingHint says which mapping blocks place the components e names.
func mappingHint(e *discovery.MappingError) string {
	blocks := make([]string, len(e.Unplaced))
	for i, u := range e.Unplaced {
		blocks[i] = fmt.Sprintf("mapping { component = %q, kind = \"StatefulSet\" or \"Deployment\", name = ... }", u.Component)
		if u.Kind == statepkg.KindVolume {
			blocks[i] = fmt.Sprintf("mapping { component = %q, pvc = ... }", u.Component)
		}
	}
	return "Add " + strings.Join(blocks, " and ") + " to the kubernetes block."
}

// componentsOfMappings are the components the mapping blocks name.
func (t *kubernetesTarget) componentsOfMappings() []string {
	out := make([]string, 0, len(t.Explicit))
	for _, e := range t.Explicit {
		out = append(out, e.Component)
	}
	return out
}

// restorePlanItems renders the executor's plan as `restore_plan`.
func restorePlanItems(ctx context.Context, p *executor.Plan) (types.List, diag.Diagnostics) {
	items := make([]restorePlanModel, 0, len(p.Components))
	for _, it := range p.Components {
		items = append(items, restorePlanModel{
			Component: types.StringValue(it.Component),
			Kind:      types.StringValue(it.Kind),
			Target:    types.StringValue(it.Target),
			Action:    types.StringValue(it.Action),
			Reason:    types.StringValue(it.Reason),
			Strategy:  types.StringValue(it.Strategy),
			Atomic:    types.BoolValue(it.Atomic),
			Bytes:     types.Int64Value(it.Bytes),
			Files:     types.Int64Value(it.Files),
		})
	}
	return objectList(ctx, items, restorePlanAttrTypes, false)
}

// applyKube executes plan p and records its outcome in plan (results,
// record, applied_at).
func applyKube(ctx context.Context, p *executor.Plan, plan *stateApplyResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	rec, err := executor.ApplyPlan(ctx, p)
	var se *executor.ScriptError
	if errors.As(err, &se) {
		// The script blocks' failure, phrased as when the provider ran them.
		if rec != nil {
			diags.Append(setKubeResults(ctx, rec, plan)...)
		}
		diags.AddAttributeError(path.Root(se.When+"_script").AtListIndex(se.Index),
			fmt.Sprintf("%s script %s failed", se.When, se.Script), scriptFailure(se.When, se.Err))
		return diags
	}
	if err != nil {
		detail := err.Error()
		var refused *executor.RefusedError
		switch {
		case errors.As(err, &refused) && rec != nil:
			detail += fmt.Sprintf("\n\nRecord %s (status %s) says why.", records.SecretName(rec.Release, rec.Revision), rec.Status)
		case rec != nil:
			detail += "\n\n" + recordSummary(rec)
		}
		var vm *jobs.VersionMismatchError
		if errors.As(err, &vm) {
			detail += fmt.Sprintf("\n\nSet agent_image in the provider block (or in this resource's kubernetes block, or UNIKUBE_AGENT_IMAGE) "+
				"to the unikube-agent image of version %s, e.g. %s.", vm.Client, jobs.AgentImageFor(vm.Client))
		}
		diags.AddError(fmt.Sprintf("Could not apply %s@%s to namespace %s", p.State, shortDigest(p.Digest), p.Namespace), detail)
		return diags
	}
	diags.Append(setKubeResults(ctx, rec, plan)...)
	return diags
}

// recordSummary says where a failed apply is recorded.
func recordSummary(rec *records.Record) string {
	// The executor's error already carries each failed component's error
	// and log tail: say only where the record is and what state things are in.
	return fmt.Sprintf("Record %s (status %s). The workloads were scaled back; components that failed hold their previous data.",
		records.SecretName(rec.Release, rec.Revision), rec.Status)
}

func setKubeResults(ctx context.Context, rec *records.Record, plan *stateApplyResourceModel) diag.Diagnostics {
	out := make([]resultModel, 0, len(rec.Components))
	for _, c := range rec.Components {
		out = append(out, resultModel{
			Component:     types.StringValue(c.Name),
			Action:        types.StringValue(c.Action),
			Strategy:      types.StringValue(c.Strategy),
			Duration:      types.StringValue(c.Duration.Round(time.Millisecond).String()),
			Bytes:         types.Int64Value(c.Bytes),
			ChunksFetched: types.Int64Value(c.ChunksFetched),
			FilesWritten:  types.Int64Value(c.FilesWritten),
		})
	}
	var diags diag.Diagnostics
	plan.Results, diags = objectList(ctx, out, resultAttrTypes, false)
	plan.Record = types.Int64Value(int64(rec.Revision))
	plan.AppliedAt = types.StringValue(rec.Time.UTC().Format(time.RFC3339))
	return diags
}

// readKubernetes refreshes record and digest from the namespace's last
// record, so a refresh shows someone else's apply, a failed apply or wiped
// records as drift. Without a usable connection (a write-only token) the
// state is kept; the plan checks again with the configuration.
func (r *StateApplyResource) readKubernetes(ctx context.Context, state *stateApplyResourceModel, def KubernetesConfig) diag.Diagnostics {
	var diags diag.Diagnostics
	ref, err := statepkg.ParseRef(state.State.ValueString())
	if err != nil {
		return diags
	}
	var m kubernetesTargetModel
	if d := state.Kubernetes.As(ctx, &m, basetypes.ObjectAsOptions{}); d.HasError() {
		return d
	}
	if !m.Host.IsNull() {
		return diags // the token is write-only: check at plan time
	}
	t, d := decodeKubernetes(ctx, state.Kubernetes, def, ref)
	if d.HasError() {
		return diags
	}
	state.ID = kubeApplyID(t)
	cl, err := access.Connect(t.Conn)
	if err != nil {
		diags.AddWarning("Cannot check the apply record", connectHint(err))
		return diags
	}
	last, err := records.Last(ctx, cl.Client, t.Namespace, t.Release, "")
	if err != nil {
		diags.AddWarning("Cannot check the apply record",
			fmt.Sprintf("Reading the records of release %q in %s: %v", t.Release, t.Namespace, err))
		return diags
	}
	switch {
	case last == nil:
		// Wiped: nothing holds a known version.
		state.Record, state.AppliedAt = types.Int64Null(), types.StringNull()
	case last.Status != records.StatusApplied:
		state.Record, state.AppliedAt = types.Int64Value(int64(last.Revision)), types.StringNull()
	case last.Digest != state.Digest.ValueString():
		state.Record = types.Int64Value(int64(last.Revision))
		state.Digest, state.VersionTag = types.StringValue(last.Digest), types.StringValue(last.Tag)
		state.AppliedAt = types.StringValue(last.Time.UTC().Format(time.RFC3339))
	default:
		state.Record = types.Int64Value(int64(last.Revision))
	}
	return diags
}

// rollbackKubernetes re-applies the version the release held before the
// current one (records.RollbackTarget, the rule `helm state rollback`
// follows too).
func (r *StateApplyResource) rollbackKubernetes(ctx context.Context, state *stateApplyResourceModel, def KubernetesConfig, timeout time.Duration) diag.Diagnostics {
	var diags diag.Diagnostics
	ref, err := statepkg.ParseRef(state.State.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("state"), "Invalid state reference", err.Error())
		return diags
	}
	t, d := decodeKubernetes(ctx, state.Kubernetes, def, ref)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	cl, err := access.Connect(t.Conn)
	if err != nil {
		diags.AddAttributeError(path.Root("kubernetes"), "Cannot reach the Kubernetes cluster to roll back", connectHint(err))
		return diags
	}
	rs, err := records.List(ctx, cl.Client, t.Namespace, t.Release)
	if err != nil {
		diags.AddError("Cannot read the apply records to roll back", err.Error())
		return diags
	}
	prev, err := records.RollbackTarget(rs, state.Digest.ValueString(), 0)
	if err != nil {
		diags.AddWarning("Nothing to roll back to",
			fmt.Sprintf("Release %q in %s: %v; the data is left in place.", t.Release, t.Namespace, err))
		return diags
	}
	prevRef, err := statepkg.ParseRef(prev.State + "@" + prev.Digest)
	if err != nil {
		diags.AddError("Cannot roll back", fmt.Sprintf("record revision %d names %s@%s: %v", prev.Revision, prev.State, prev.Digest, err))
		return diags
	}
	tflog.Info(ctx, "rolling back", map[string]any{"to_revision": prev.Revision, "digest": prev.Digest, "tag": prev.Tag})
	ka, d := kubeApplyOf(ctx, state, false)
	diags.Append(d...)
	p, d := r.planKube(ctx, t, prevRef, ka, timeout)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	p.MarkRollback(prev.Revision)
	var ignored stateApplyResourceModel
	diags.Append(applyKube(ctx, p, &ignored)...)
	return diags
}

// modifyPlanKubernetes shows the executor's plan: the plan is empty exactly
// when every component already holds the version the reference resolves
// to and reapply_triggers did not change.
func (r *StateApplyResource) modifyPlanKubernetes(ctx context.Context, resp *resource.ModifyPlanResponse, plan *stateApplyResourceModel, config stateApplyResourceModel, state *stateApplyResourceModel) {
	if plan.State.IsUnknown() || plan.Strategy.IsUnknown() || plan.Components.IsUnknown() || !fullyKnown(ctx, config.Kubernetes) {
		markApplyUnknown(plan)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
		return
	}
	ref, err := statepkg.ParseRef(plan.State.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("state"), "Invalid state reference", err.Error())
		return
	}
	t, diags := decodeKubernetes(ctx, config.Kubernetes, r.kube, ref)
	resp.Diagnostics.Append(diags...)
	ka, diags := kubeApplyOf(ctx, plan, triggersChanged(state, plan))
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, diags := r.planKube(ctx, t, ref, ka, time.Hour)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state != nil && state.Digest.ValueString() == p.Digest && !state.AppliedAt.IsNull() && p.UpToDate() {
		// The namespace holds this version from our last apply.
		plan.ID, plan.Digest, plan.VersionTag = state.ID, state.Digest, state.VersionTag
		plan.RestorePlan, plan.Results, plan.AppliedAt, plan.Record = state.RestorePlan, state.Results, state.AppliedAt, state.Record
		resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
		return
	}
	plan.ID = kubeApplyID(t)
	plan.Digest, plan.VersionTag = types.StringValue(p.Digest), types.StringValue(p.Tag)
	plan.RestorePlan, diags = restorePlanItems(ctx, p)
	resp.Diagnostics.Append(diags...)
	if state != nil && state.AppliedAt.IsNull() && state.Record.IsNull() && p.UpToDate() && p.Last != nil {
		// Imported: adopt the namespace's successful apply of this version
		// instead of applying it again.
		resp.Diagnostics.Append(setKubeResults(ctx, p.Last, plan)...)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
		return
	}
	if state != nil && state.Digest.ValueString() == p.Digest && !ka.force {
		for _, it := range p.Components {
			if it.Action != "skip" {
				resp.Diagnostics.AddWarning("The namespace no longer holds the applied version",
					fmt.Sprintf("%s: component %s: %s. The apply re-applies %s (%s).", t.Namespace, it.Component, it.Reason, shortDigest(p.Digest), p.Tag))
				break
			}
		}
	}
	plan.Results = types.ListUnknown(types.ObjectType{AttrTypes: resultAttrTypes})
	plan.AppliedAt, plan.Record = types.StringUnknown(), types.Int64Unknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
}

// applyKubernetesConfig applies the planned digest into the namespace the
// configuration's kubernetes block names: it plans once more with the
// configuration (the write-only token, the scripts) and runs that plan.
func (r *StateApplyResource) applyKubernetesConfig(ctx context.Context, cfg interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, kube types.Object, plan *stateApplyResourceModel, force bool) diag.Diagnostics {
	var diags diag.Diagnostics
	ref, err := statepkg.ParseRef(plan.State.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("state"), "Invalid state reference", err.Error())
		return diags
	}
	t, d := decodeKubernetes(ctx, kube, r.kube, ref)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	pre, d := decodeScripts(ctx, cfg, "pre_script", t, r.kube)
	diags.Append(d...)
	post, d := decodeScripts(ctx, cfg, "post_script", t, r.kube)
	diags.Append(d...)
	ka, d := kubeApplyOf(ctx, plan, force)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	ka.preScripts, ka.postScripts = executorScripts(pre), executorScripts(post)
	if !plan.Digest.IsUnknown() {
		// The version the plan showed is the one that lands.
		ref = statepkg.Ref{Project: ref.Project, State: ref.State, Digest: plan.Digest.ValueString()}
	}
	timeout := time.Hour
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	p, d := r.planKube(ctx, t, ref, ka, timeout)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	plan.ID = kubeApplyID(t)
	plan.Digest, plan.VersionTag = types.StringValue(p.Digest), types.StringValue(p.Tag)
	if plan.RestorePlan.IsUnknown() {
		plan.RestorePlan, d = restorePlanItems(ctx, p)
		diags.Append(d...)
	}
	diags.Append(applyKube(ctx, p, plan)...)
	return diags
}

// executorScripts turns script blocks of a kubernetes target (run in its
// cluster) into the request's scripts.
func executorScripts(runs []scriptRun) []executor.Script {
	out := make([]executor.Script, 0, len(runs))
	for _, sr := range runs {
		out = append(out, executor.Script{Script: sr.script, Vars: sr.vars, Namespace: sr.namespace, Timeout: sr.timeout})
	}
	return out
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
