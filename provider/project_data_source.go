package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ datasource.DataSource              = &ProjectDataSource{}
	_ datasource.DataSourceWithConfigure = &ProjectDataSource{}
)

// NewProjectDataSource is the factory of the `unikube_project` data source.
func NewProjectDataSource() datasource.DataSource { return &ProjectDataSource{} }

// ProjectDataSource reads one project with its states and project grants.
type ProjectDataSource struct {
	client *client.Client
}

// projectDataSourceModel is the `unikube_project` data source.
type projectDataSourceModel struct {
	Name        types.String `tfsdk:"name"`
	ID          types.String `tfsdk:"id"`
	Description types.String `tfsdk:"description"`
	CreatedAt   types.String `tfsdk:"created_at"`
	CreatedBy   types.String `tfsdk:"created_by"`
	States      types.List   `tfsdk:"states"`
	Access      types.List   `tfsdk:"access"`
}

func (d *ProjectDataSource) Metadata(ctx context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project"
}

func (d *ProjectDataSource) Schema(ctx context.Context, req datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a project: its description, the names of its states and the grants on the whole project. " +
			"Needs `viewer` on the project.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the project.",
				Required:            true,
				Validators:          []validator.String{validators.DNSName()},
			},
			"id":          schema.StringAttribute{MarkdownDescription: "The project's name.", Computed: true},
			"description": schema.StringAttribute{MarkdownDescription: "Description of the project.", Computed: true},
			"created_at":  schema.StringAttribute{MarkdownDescription: "When the project was created (RFC 3339).", Computed: true},
			"created_by":  schema.StringAttribute{MarkdownDescription: "Subject that created the project.", Computed: true},
			"states": schema.ListAttribute{
				MarkdownDescription: "Names of the project's named states, sorted.",
				Computed:            true,
				ElementType:         types.StringType,
			},
			"access": schema.ListNestedAttribute{
				MarkdownDescription: "Grants on the whole project (grants on single states are not listed), sorted by subject.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"subject": schema.StringAttribute{MarkdownDescription: "Grantee: `user:NAME`, `group:NAME`, `token:USER:NAME` or `token:NAME`.", Computed: true},
					"role":    schema.StringAttribute{MarkdownDescription: "Role: `owner`, `maintainer`, `applier` or `viewer`.", Computed: true},
				}},
			},
		},
	}
}

func (d *ProjectDataSource) Configure(ctx context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		d.client = pd.client
	}
}

func (d *ProjectDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var data projectDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &data)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := data.Name.ValueString()
	p, err := d.client.GetProject(ctx, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not read project "+name, err)
		return
	}
	states, err := d.client.ListStates(ctx, name)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the states of project "+name, err)
		return
	}
	grants, err := d.client.ListGrants(ctx, name, "")
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list the grants on project "+name, err)
		return
	}
	data.ID = types.StringValue(p.Name)
	data.Description = types.StringValue(p.Description)
	data.CreatedAt = types.StringValue(p.CreatedAt.UTC().Format(time.RFC3339))
	data.CreatedBy = types.StringValue(p.CreatedBy)
	stateNames := make([]string, 0, len(states))
	for _, st := range states {
		stateNames = append(stateNames, st.Name)
	}
	var diags diag.Diagnostics
	data.States, diags = types.ListValue(types.StringType, stringValues(stateNames))
	resp.Diagnostics.Append(diags...)
	projectGrants := make([]grantModel, 0, len(grants))
	for _, g := range grants {
		if g.State == "" {
			projectGrants = append(projectGrants, grantModel{Subject: types.StringValue(g.Subject), Role: types.StringValue(g.Role)})
		}
	}
	data.Access, diags = objectList(ctx, projectGrants, grantAttrTypes, false)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &data)...)
}
