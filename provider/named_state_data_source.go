package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ datasource.DataSource              = &NamedStateDataSource{}
	_ datasource.DataSourceWithConfigure = &NamedStateDataSource{}
)

// NewNamedStateDataSource is the factory of the `unikube_named_state` data
// source.
func NewNamedStateDataSource() datasource.DataSource { return &NamedStateDataSource{} }

// NamedStateDataSource reads a named state with its versions and grants.
type NamedStateDataSource struct {
	client *client.Client
}

// namedStateDataSourceModel is the `unikube_named_state` data source.
type namedStateDataSourceModel struct {
	Project     types.String `tfsdk:"project"`
	Name        types.String `tfsdk:"name"`
	ID          types.String `tfsdk:"id"`
	Description types.String `tfsdk:"description"`
	CreatedAt   types.String `tfsdk:"created_at"`
	CreatedBy   types.String `tfsdk:"created_by"`
	Versions    types.List   `tfsdk:"versions"`
	Access      types.List   `tfsdk:"access"`
}

// versionSummaryModel is one element of `versions`.
type versionSummaryModel struct {
	Tag       types.String `tfsdk:"tag"`
	Digest    types.String `tfsdk:"digest"`
	Revision  types.String `tfsdk:"revision"`
	Message   types.String `tfsdk:"message"`
	CreatedAt types.String `tfsdk:"created_at"`
	CreatedBy types.String `tfsdk:"created_by"`
	Size      types.Int64  `tfsdk:"size"`
	Candidate types.Bool   `tfsdk:"candidate"`
}

var versionSummaryAttrTypes = map[string]attr.Type{
	"tag":        types.StringType,
	"digest":     types.StringType,
	"revision":   types.StringType,
	"message":    types.StringType,
	"created_at": types.StringType,
	"created_by": types.StringType,
	"size":       types.Int64Type,
	"candidate":  types.BoolType,
}

// grantModel is one access grant.
type grantModel struct {
	Subject types.String `tfsdk:"subject"`
	Role    types.String `tfsdk:"role"`
}

var grantAttrTypes = map[string]attr.Type{
	"subject": types.StringType,
	"role":    types.StringType,
}

func (d *NamedStateDataSource) Metadata(ctx context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_named_state"
}

func (d *NamedStateDataSource) Schema(ctx context.Context, req datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a named state: its description, every version (newest first) and the access grants on it.",
		Attributes: map[string]schema.Attribute{
			"project": schema.StringAttribute{
				MarkdownDescription: "Project of the state.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the state.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
			},
			"id":          schema.StringAttribute{MarkdownDescription: "`project/name`.", Computed: true},
			"description": schema.StringAttribute{MarkdownDescription: "Description of the state.", Computed: true},
			"created_at":  schema.StringAttribute{MarkdownDescription: "When the state was created (RFC 3339).", Computed: true},
			"created_by":  schema.StringAttribute{MarkdownDescription: "Subject that created the state.", Computed: true},
			"versions": schema.ListNestedAttribute{
				MarkdownDescription: "Versions of the state, newest first.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"tag":        schema.StringAttribute{MarkdownDescription: "Tag of the version.", Computed: true},
					"digest":     schema.StringAttribute{MarkdownDescription: "Digest of the version (`sha256:<hex>`).", Computed: true},
					"revision":   schema.StringAttribute{MarkdownDescription: "Free-form revision label.", Computed: true},
					"message":    schema.StringAttribute{MarkdownDescription: "Message given when the version was created.", Computed: true},
					"created_at": schema.StringAttribute{MarkdownDescription: "When the version was created (RFC 3339).", Computed: true},
					"created_by": schema.StringAttribute{MarkdownDescription: "Subject that created the version.", Computed: true},
					"size":       schema.Int64Attribute{MarkdownDescription: "Uncompressed size in bytes.", Computed: true},
					"candidate":  schema.BoolAttribute{MarkdownDescription: "Whether the version is a candidate.", Computed: true},
				}},
			},
			"access": schema.ListNestedAttribute{
				MarkdownDescription: "Grants on this state (grants on the whole project are not listed).",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"subject": schema.StringAttribute{MarkdownDescription: "Grantee: `user:NAME`, `group:NAME`, `token:USER:NAME` (the token NAME of USER) or `token:NAME` (a token of your own user; the admin must name the user).", Computed: true},
					"role":    schema.StringAttribute{MarkdownDescription: "Role: `owner`, `maintainer`, `applier` or `viewer`.", Computed: true},
				}},
			},
		},
	}
}

func (d *NamedStateDataSource) Configure(ctx context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		d.client = pd.client
	}
}

func (d *NamedStateDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var data namedStateDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &data)...)
	if resp.Diagnostics.HasError() {
		return
	}
	project, name := data.Project.ValueString(), data.Name.ValueString()
	st, err := d.client.GetState(ctx, project, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read state "+project+"/"+name, err)
		return
	}
	versions, err := d.client.ListVersions(ctx, project, name, client.ListVersionsOptions{})
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the versions of "+project+"/"+name, err)
		return
	}
	grants, err := d.client.ListGrants(ctx, project, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the grants on "+project+"/"+name, err)
		return
	}
	data.ID = types.StringValue(project + "/" + name)
	data.Description = types.StringValue(st.Description)
	data.CreatedAt = types.StringValue(st.CreatedAt.UTC().Format(time.RFC3339))
	data.CreatedBy = types.StringValue(st.CreatedBy)

	var diags diag.Diagnostics
	data.Versions, diags = versionSummaries(ctx, versions)
	resp.Diagnostics.Append(diags...)
	data.Access, diags = grantList(ctx, grants, false)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &data)...)
}

func versionSummaries(ctx context.Context, vs []client.Version) (types.List, diag.Diagnostics) {
	out := make([]versionSummaryModel, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionSummaryModel{
			Tag:       types.StringValue(v.Tag),
			Digest:    types.StringValue(v.Digest),
			Revision:  types.StringValue(v.Revision),
			Message:   types.StringValue(v.Message),
			CreatedAt: types.StringValue(v.CreatedAt.UTC().Format(time.RFC3339)),
			CreatedBy: types.StringValue(v.CreatedBy),
			Size:      types.Int64Value(v.Size),
			Candidate: types.BoolValue(v.Candidate),
		})
	}
	return objectList(ctx, out, versionSummaryAttrTypes, false)
}

// grantList converts the state-scoped grants (project-wide ones are skipped).
func grantList(ctx context.Context, gs []client.Grant, nullWhenEmpty bool) (types.List, diag.Diagnostics) {
	out := make([]grantModel, 0, len(gs))
	for _, g := range gs {
		if g.State == "" {
			continue
		}
		out = append(out, grantModel{Subject: types.StringValue(g.Subject), Role: types.StringValue(g.Role)})
	}
	return objectList(ctx, out, grantAttrTypes, nullWhenEmpty)
}
