package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

var (
	_ datasource.DataSource              = &ProjectsDataSource{}
	_ datasource.DataSourceWithConfigure = &ProjectsDataSource{}
)

// NewProjectsDataSource is the factory of the `unikube_projects` data source.
func NewProjectsDataSource() datasource.DataSource { return &ProjectsDataSource{} }

// ProjectsDataSource lists the projects the caller may see.
type ProjectsDataSource struct {
	client *client.Client
}

// projectsDataSourceModel is the `unikube_projects` data source.
type projectsDataSourceModel struct {
	Projects types.List `tfsdk:"projects"`
}

// projectSummaryModel is one element of `projects`.
type projectSummaryModel struct {
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	CreatedAt   types.String `tfsdk:"created_at"`
	CreatedBy   types.String `tfsdk:"created_by"`
}

var projectSummaryAttrTypes = map[string]attr.Type{
	"name":        types.StringType,
	"description": types.StringType,
	"created_at":  types.StringType,
	"created_by":  types.StringType,
}

func (d *ProjectsDataSource) Metadata(ctx context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_projects"
}

func (d *ProjectsDataSource) Schema(ctx context.Context, req datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the projects the provider's token has a grant in (on the project or on one of its states); the admin sees all.",
		Attributes: map[string]schema.Attribute{
			"projects": schema.ListNestedAttribute{
				MarkdownDescription: "The projects, sorted by name.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":        schema.StringAttribute{MarkdownDescription: "Name of the project.", Computed: true},
					"description": schema.StringAttribute{MarkdownDescription: "Description of the project.", Computed: true},
					"created_at":  schema.StringAttribute{MarkdownDescription: "When the project was created (RFC 3339).", Computed: true},
					"created_by":  schema.StringAttribute{MarkdownDescription: "Subject that created the project.", Computed: true},
				}},
			},
		},
	}
}

func (d *ProjectsDataSource) Configure(ctx context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		d.client = pd.client
	}
}

func (d *ProjectsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	ps, err := d.client.ListProjects(ctx)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not list projects", err)
		return
	}
	out := make([]projectSummaryModel, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectSummaryModel{
			Name:        types.StringValue(p.Name),
			Description: types.StringValue(p.Description),
			CreatedAt:   types.StringValue(p.CreatedAt.UTC().Format(time.RFC3339)),
			CreatedBy:   types.StringValue(p.CreatedBy),
		})
	}
	var data projectsDataSourceModel
	var diags diag.Diagnostics
	data.Projects, diags = objectList(ctx, out, projectSummaryAttrTypes, false)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &data)...)
}
