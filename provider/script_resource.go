package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
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
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ resource.Resource                   = &ScriptResource{}
	_ resource.ResourceWithConfigure      = &ScriptResource{}
	_ resource.ResourceWithImportState    = &ScriptResource{}
	_ resource.ResourceWithValidateConfig = &ScriptResource{}
)

// scriptInterpreters are the interpreters a cluster script can run under.
var scriptInterpreters = []string{"sh", "bash", "python"}

// envVarName is what a script variable name must look like: it reaches the
// script as an environment variable.
var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewScriptResource is the factory of `unikube_script`.
func NewScriptResource() resource.Resource { return &ScriptResource{} }

// ScriptResource manages a cluster script kept on the platform.
type ScriptResource struct {
	client *client.Client
}

// scriptResourceModel is the state and plan of `unikube_script`.
type scriptResourceModel struct {
	ID             types.String `tfsdk:"id"`
	Project        types.String `tfsdk:"project"`
	Name           types.String `tfsdk:"name"`
	Description    types.String `tfsdk:"description"`
	Image          types.String `tfsdk:"image"`
	Interpreter    types.String `tfsdk:"interpreter"`
	Body           types.String `tfsdk:"body"`
	Variables      types.List   `tfsdk:"variables"`
	ServiceAccount types.String `tfsdk:"service_account"`
	Credentials    types.List   `tfsdk:"credentials"`
	Author         types.String `tfsdk:"author"`
	CreatedAt      types.String `tfsdk:"created_at"`
	ModifiedAt     types.String `tfsdk:"modified_at"`
}

// scriptVariableModel is one element of `variables`.
type scriptVariableModel struct {
	Name             types.String `tfsdk:"name"`
	Default          types.String `tfsdk:"default"`
	DefaultWO        types.String `tfsdk:"default_wo"`
	DefaultWOVersion types.Int64  `tfsdk:"default_wo_version"`
	Required         types.Bool   `tfsdk:"required"`
	Sensitive        types.Bool   `tfsdk:"sensitive"`
}

// scriptCredentialModel is one element of `credentials`.
type scriptCredentialModel struct {
	Secret types.String `tfsdk:"secret"`
	Keys   types.List   `tfsdk:"keys"`
}

var scriptVariableAttrTypes = map[string]attr.Type{
	"name":               types.StringType,
	"default":            types.StringType,
	"default_wo":         types.StringType,
	"default_wo_version": types.Int64Type,
	"required":           types.BoolType,
	"sensitive":          types.BoolType,
}

var scriptCredentialAttrTypes = map[string]attr.Type{
	"secret": types.StringType,
	"keys":   types.ListType{ElemType: types.StringType},
}

func (r *ScriptResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_script"
}

func (r *ScriptResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A cluster script kept on the platform: an `sh`, `bash` or `python` script that runs inside a " +
			"Kubernetes cluster as a Job, with declared variables and the Secrets it may read.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "Identifier of the script: `project/name`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Project the script belongs to. Changing it replaces the script.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the script, a lowercase DNS label unique in the project. Changing it replaces the script.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "What the script does.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
			},
			"image": schema.StringAttribute{
				MarkdownDescription: "Container image the script runs in. It must contain the interpreter. Small public images to choose from: " +
					"`" + scriptrun.DefaultImages[scriptrun.InterpreterSh] + "` (`sh`), `" + scriptrun.DefaultImages[scriptrun.InterpreterBash] + "` (`bash`), " +
					"`" + scriptrun.DefaultImages[scriptrun.InterpreterPython] + "` (`python`); a cluster without access to Docker Hub needs an image from its own registry.",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"interpreter": schema.StringAttribute{
				MarkdownDescription: "Interpreter of `body`: one of `sh`, `bash`, `python`. Defaults to `sh`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("sh"),
				Validators:          []validator.String{stringvalidator.OneOf(scriptInterpreters...)},
			},
			"body": schema.StringAttribute{
				MarkdownDescription: "Source of the script. Use `file(\"script.sh\")` to keep it in its own file.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"variables": schema.ListNestedAttribute{
				MarkdownDescription: "Inputs of the script, passed to it as environment variables. " +
					"Defaults of sensitive variables go in the write-only `default_wo`, so they never reach the plan or the state.",
				Optional: true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							MarkdownDescription: "Name of the variable, also the environment variable the script reads: `[A-Za-z_][A-Za-z0-9_]*`.",
							Required:            true,
							Validators: []validator.String{stringvalidator.RegexMatches(envVarName,
								"must be an environment variable name: a letter or _ followed by letters, digits or _")},
						},
						"default": schema.StringAttribute{
							MarkdownDescription: "Value used when a run does not set the variable. Not allowed for sensitive variables: use `default_wo`.",
							Optional:            true,
							Validators: []validator.String{stringvalidator.ConflictsWith(
								path.MatchRelative().AtParent().AtName("default_wo"))},
						},
						"default_wo": schema.StringAttribute{
							MarkdownDescription: "Write-only default of a sensitive variable: sent to the platform, never stored in the Terraform state. " +
								"The platform keeps it encrypted (it needs a secret key, `UNIKUBE_SECRET_KEY`) and never returns it. " +
								"Requires Terraform 1.11 or later. Change `default_wo_version` to send a new value.",
							Optional:  true,
							Sensitive: true,
							WriteOnly: true,
						},
						"default_wo_version": schema.Int64Attribute{
							MarkdownDescription: "Any number; changing it makes Terraform send `default_wo` again, since write-only values leave no trace to compare.",
							Optional:            true,
							Validators: []validator.Int64{int64validator.AlsoRequires(
								path.MatchRelative().AtParent().AtName("default_wo"))},
						},
						"required": schema.BoolAttribute{
							MarkdownDescription: "Whether every run must set the variable. A required variable has no default. Defaults to `false`.",
							Optional:            true,
							Computed:            true,
							Default:             booldefault.StaticBool(false),
						},
						"sensitive": schema.BoolAttribute{
							MarkdownDescription: "Whether the value is secret: it is masked in run records and logs. Defaults to `false`.",
							Optional:            true,
							Computed:            true,
							Default:             booldefault.StaticBool(false),
						},
					},
				},
			},
			"service_account": schema.StringAttribute{
				MarkdownDescription: "Kubernetes ServiceAccount the script's Job runs as. Defaults to the namespace's default account.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
			},
			"credentials": schema.ListNestedAttribute{
				MarkdownDescription: "Kubernetes Secrets in the target namespace the script may read. Only the Secret's name and keys are stored; " +
					"the values stay in the cluster.",
				Optional:   true,
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"secret": schema.StringAttribute{
							MarkdownDescription: "Name of the Secret.",
							Required:            true,
							Validators:          []validator.String{validators.DNSSubdomain()},
						},
						"keys": schema.ListAttribute{
							MarkdownDescription: "Keys of the Secret passed to the script as environment variables; all keys when omitted.",
							ElementType:         types.StringType,
							Optional:            true,
							Validators: []validator.List{listvalidator.ValueStringsAre(stringvalidator.RegexMatches(envVarName,
								"must be usable as an environment variable name"))},
						},
					},
				},
			},
			"author": schema.StringAttribute{
				MarkdownDescription: "Subject that created the script.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_at": schema.StringAttribute{
				MarkdownDescription: "When the script was created (RFC 3339).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"modified_at": schema.StringAttribute{
				MarkdownDescription: "When the script was last changed (RFC 3339).",
				Computed:            true,
			},
		},
	}
}

func (r *ScriptResource) Configure(ctx context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		r.client = pd.client
	}
}

// ValidateConfig checks what single-attribute validators cannot: unique
// variable names, and defaults that match required/sensitive.
func (r *ScriptResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var list types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("variables"), &list)...)
	if resp.Diagnostics.HasError() || list.IsNull() || list.IsUnknown() {
		return
	}
	var vars []scriptVariableModel
	resp.Diagnostics.Append(list.ElementsAs(ctx, &vars, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	seen := map[string]int{}
	for i, v := range vars {
		p := path.Root("variables").AtListIndex(i)
		if !v.Name.IsUnknown() && !v.Name.IsNull() {
			if j, dup := seen[v.Name.ValueString()]; dup {
				resp.Diagnostics.AddAttributeError(p.AtName("name"), "Duplicate script variable",
					fmt.Sprintf("Variable %q is already declared at index %d; each variable needs a unique name.", v.Name.ValueString(), j))
			}
			seen[v.Name.ValueString()] = i
		}
		hasDefault := !v.Default.IsNull() || !v.DefaultWO.IsNull()
		if v.Required.ValueBool() && hasDefault {
			attr := "default"
			if !v.DefaultWO.IsNull() {
				attr = "default_wo"
			}
			resp.Diagnostics.AddAttributeError(p.AtName(attr), "Required variable with a default",
				"A required variable must be set by every run, so a default would never be used. Remove the default or set required = false.")
		}
		if v.Sensitive.ValueBool() && !v.Default.IsNull() {
			resp.Diagnostics.AddAttributeError(p.AtName("default"), "Sensitive variable with a plain default",
				"A plain default is stored in the Terraform state and shown in plans. Use the write-only default_wo for sensitive variables.")
		}
		if !v.Sensitive.IsUnknown() && !v.Sensitive.ValueBool() && !v.DefaultWO.IsNull() {
			resp.Diagnostics.AddAttributeError(p.AtName("default_wo"), "Write-only default of a non-sensitive variable",
				"default_wo is meant for secrets; set sensitive = true on the variable, or use default for plain values.")
		}
	}
}

func (r *ScriptResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan, config scriptResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := scriptSpec(ctx, plan, config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, name := plan.Project.ValueString(), plan.Name.ValueString()
	got, err := r.client.PutScript(ctx, project, name, spec)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not create script "+project+"/"+name, err)
		return
	}
	resp.Diagnostics.Append(scriptToModel(ctx, got, plan, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ScriptResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state scriptResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	got, err := r.client.GetScript(ctx, state.Project.ValueString(), state.Name.ValueString())
	if errors.Is(err, client.ErrNotFound) {
		// Deleted outside Terraform: drop it so the plan recreates it.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read script "+state.ID.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(scriptToModel(ctx, got, state, &state)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *ScriptResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, config scriptResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := scriptSpec(ctx, plan, config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, name := plan.Project.ValueString(), plan.Name.ValueString()
	got, err := r.client.PutScript(ctx, project, name, spec)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not update script "+project+"/"+name, err)
		return
	}
	resp.Diagnostics.Append(scriptToModel(ctx, got, plan, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ScriptResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state scriptResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.DeleteScript(ctx, state.Project.ValueString(), state.Name.ValueString())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, "Could not delete script "+state.ID.ValueString(), err)
	}
}

func (r *ScriptResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importProjectName(ctx, req, resp, "script")
}

// scriptSpec builds the platform's script content from the plan, taking the
// write-only defaults from the configuration (they are never in the plan).
func scriptSpec(ctx context.Context, plan, config scriptResourceModel) (client.ScriptSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := client.ScriptSpec{
		Description:    plan.Description.ValueString(),
		Image:          plan.Image.ValueString(),
		Interpreter:    plan.Interpreter.ValueString(),
		Body:           plan.Body.ValueString(),
		ServiceAccount: plan.ServiceAccount.ValueString(),
		Variables:      []client.Variable{},
		Credentials:    []client.Credential{},
	}
	var planVars, configVars []scriptVariableModel
	diags.Append(listElements(ctx, plan.Variables, &planVars)...)
	diags.Append(listElements(ctx, config.Variables, &configVars)...)
	for i, v := range planVars {
		cv := client.Variable{
			Name:      v.Name.ValueString(),
			Default:   v.Default.ValueString(),
			Required:  v.Required.ValueBool(),
			Sensitive: v.Sensitive.ValueBool(),
		}
		if i < len(configVars) && !configVars[i].DefaultWO.IsNull() {
			cv.Default = configVars[i].DefaultWO.ValueString()
		}
		s.Variables = append(s.Variables, cv)
	}
	var creds []scriptCredentialModel
	diags.Append(listElements(ctx, plan.Credentials, &creds)...)
	for _, c := range creds {
		cc := client.Credential{Secret: c.Secret.ValueString()}
		diags.Append(listElements(ctx, c.Keys, &cc.Keys)...)
		s.Credentials = append(s.Credentials, cc)
	}
	return s, diags
}

// scriptToModel writes what the platform returned into out. prior (the plan
// or the previous state) supplies what the platform does not keep:
// default_wo_version, and the null-versus-empty choice of optional lists.
// Defaults of sensitive variables are never copied into the state.
func scriptToModel(ctx context.Context, s client.Script, prior scriptResourceModel, out *scriptResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	out.ID = types.StringValue(s.Project + "/" + s.Name)
	out.Project = types.StringValue(s.Project)
	out.Name = types.StringValue(s.Name)
	out.Description = types.StringValue(s.Description)
	out.Image = types.StringValue(s.Image)
	out.Interpreter = types.StringValue(s.Interpreter)
	out.Body = types.StringValue(s.Body)
	out.ServiceAccount = types.StringValue(s.ServiceAccount)
	out.Author = types.StringValue(s.Author)
	out.CreatedAt = types.StringValue(s.CreatedAt.UTC().Format(time.RFC3339))
	out.ModifiedAt = types.StringValue(s.ModifiedAt.UTC().Format(time.RFC3339))

	var priorVars []scriptVariableModel
	diags.Append(listElements(ctx, prior.Variables, &priorVars)...)
	versions := make(map[string]types.Int64, len(priorVars))
	for _, v := range priorVars {
		versions[v.Name.ValueString()] = v.DefaultWOVersion
	}
	vars := make([]scriptVariableModel, 0, len(s.Variables))
	for _, v := range s.Variables {
		m := scriptVariableModel{
			Name:             types.StringValue(v.Name),
			Default:          types.StringNull(),
			DefaultWO:        types.StringNull(), // write-only: always null in state
			DefaultWOVersion: types.Int64Null(),
			Required:         types.BoolValue(v.Required),
			Sensitive:        types.BoolValue(v.Sensitive),
		}
		if ver, ok := versions[v.Name]; ok {
			m.DefaultWOVersion = ver
		}
		if !v.Sensitive && v.Default != "" {
			m.Default = types.StringValue(v.Default)
		}
		vars = append(vars, m)
	}
	var d diag.Diagnostics
	out.Variables, d = objectList(ctx, vars, scriptVariableAttrTypes, prior.Variables.IsNull())
	diags.Append(d...)

	creds := make([]scriptCredentialModel, 0, len(s.Credentials))
	for _, c := range s.Credentials {
		keys := types.ListNull(types.StringType)
		if len(c.Keys) > 0 {
			var kd diag.Diagnostics
			keys, kd = types.ListValueFrom(ctx, types.StringType, c.Keys)
			diags.Append(kd...)
		}
		creds = append(creds, scriptCredentialModel{Secret: types.StringValue(c.Secret), Keys: keys})
	}
	out.Credentials, d = objectList(ctx, creds, scriptCredentialAttrTypes, prior.Credentials.IsNull())
	diags.Append(d...)
	return diags
}
