package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ datasource.DataSource              = &StateVersionDataSource{}
	_ datasource.DataSourceWithConfigure = &StateVersionDataSource{}
)

// NewStateVersionDataSource is the factory of the `unikube_state_version`
// data source.
func NewStateVersionDataSource() datasource.DataSource { return &StateVersionDataSource{} }

// StateVersionDataSource resolves a reference to one version.
type StateVersionDataSource struct {
	client *client.Client
}

// stateVersionDataSourceModel is the `unikube_state_version` data source.
type stateVersionDataSourceModel struct {
	Reference  types.String `tfsdk:"reference"`
	ID         types.String `tfsdk:"id"`
	Project    types.String `tfsdk:"project"`
	State      types.String `tfsdk:"state"`
	Tag        types.String `tfsdk:"tag"`
	Digest     types.String `tfsdk:"digest"`
	Revision   types.String `tfsdk:"revision"`
	Message    types.String `tfsdk:"message"`
	CreatedAt  types.String `tfsdk:"created_at"`
	CreatedBy  types.String `tfsdk:"created_by"`
	Size       types.Int64  `tfsdk:"size"`
	Candidate  types.Bool   `tfsdk:"candidate"`
	Components types.List   `tfsdk:"components"`
}

// componentSummaryModel describes one component of a version.
type componentSummaryModel struct {
	Name   types.String `tfsdk:"name"`
	Kind   types.String `tfsdk:"kind"`
	Format types.String `tfsdk:"format"`
	Size   types.Int64  `tfsdk:"size"`
	Chunks types.Int64  `tfsdk:"chunks"`
	Files  types.Int64  `tfsdk:"files"`
}

var componentSummaryAttrTypes = map[string]attr.Type{
	"name":   types.StringType,
	"kind":   types.StringType,
	"format": types.StringType,
	"size":   types.Int64Type,
	"chunks": types.Int64Type,
	"files":  types.Int64Type,
}

// componentSummaryAttributes is the schema of a component summary, shared
// by the data sources.
func componentSummaryAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"name":   schema.StringAttribute{MarkdownDescription: "Name of the component, e.g. `db`.", Computed: true},
		"kind":   schema.StringAttribute{MarkdownDescription: "Kind of service: `postgres`, `mysql`, `redis`, `volume`, `kubernetes` or `script`.", Computed: true},
		"format": schema.StringAttribute{MarkdownDescription: "Format of the component's data stream, e.g. `pg_dump-custom` or `tar`.", Computed: true},
		"size":   schema.Int64Attribute{MarkdownDescription: "Uncompressed size of the component's data in bytes.", Computed: true},
		"chunks": schema.Int64Attribute{MarkdownDescription: "Number of content-addressed chunks holding the data.", Computed: true},
		"files":  schema.Int64Attribute{MarkdownDescription: "Number of files in a volume component's index; 0 for other kinds.", Computed: true},
	}
}

func (d *StateVersionDataSource) Metadata(ctx context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_state_version"
}

func (d *StateVersionDataSource) Schema(ctx context.Context, req datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Resolves a reference such as `shop/seed`, `shop/seed:@candidate` or `shop/seed@sha256:...` to the " +
			"exact version it names now: its tag, digest, size and components.",
		Attributes: map[string]schema.Attribute{
			"reference": schema.StringAttribute{
				MarkdownDescription: "Reference to resolve: `project/state` (the newest non-candidate version), " +
					"`project/state:TAG-EXPRESSION` (`@latest`, `@candidate` or a tag) or `project/state@sha256:DIGEST`.",
				Required:   true,
				Validators: []validator.String{validators.Reference()},
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "The resolved version as `project/state@digest`.",
				Computed:            true,
			},
			"project":    schema.StringAttribute{MarkdownDescription: "Project of the state.", Computed: true},
			"state":      schema.StringAttribute{MarkdownDescription: "Name of the state.", Computed: true},
			"tag":        schema.StringAttribute{MarkdownDescription: "Tag of the version.", Computed: true},
			"digest":     schema.StringAttribute{MarkdownDescription: "Digest of the version's manifest (`sha256:<hex>`): its identity.", Computed: true},
			"revision":   schema.StringAttribute{MarkdownDescription: "Free-form revision label, e.g. the application version.", Computed: true},
			"message":    schema.StringAttribute{MarkdownDescription: "Message given when the version was created.", Computed: true},
			"created_at": schema.StringAttribute{MarkdownDescription: "When the version was created (RFC 3339).", Computed: true},
			"created_by": schema.StringAttribute{MarkdownDescription: "Subject that created the version.", Computed: true},
			"size":       schema.Int64Attribute{MarkdownDescription: "Total uncompressed size of the version's data in bytes.", Computed: true},
			"candidate":  schema.BoolAttribute{MarkdownDescription: "Whether the version is a candidate (its tag starts with `[cand]-`).", Computed: true},
			"components": schema.ListNestedAttribute{
				MarkdownDescription: "Components of the version, one per service.",
				Computed:            true,
				NestedObject:        schema.NestedAttributeObject{Attributes: componentSummaryAttributes()},
			},
		},
	}
}

func (d *StateVersionDataSource) Configure(ctx context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		d.client = pd.client
	}
}

func (d *StateVersionDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var data stateVersionDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &data)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ref, err := statepkg.ParseRef(data.Reference.ValueString())
	if err != nil {
		// The validator normally catches this; a value known only at apply
		// time reaches here unchecked.
		resp.Diagnostics.AddAttributeError(path.Root("reference"), "Invalid state reference", err.Error())
		return
	}
	v, err := d.client.Resolve(ctx, ref)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not resolve "+ref.String(), err)
		return
	}
	data.ID = types.StringValue(v.Project + "/" + v.State + "@" + v.Digest)
	data.Project = types.StringValue(v.Project)
	data.State = types.StringValue(v.State)
	data.Tag = types.StringValue(v.Tag)
	data.Digest = types.StringValue(v.Digest)
	data.Revision = types.StringValue(v.Revision)
	data.Message = types.StringValue(v.Message)
	data.CreatedAt = types.StringValue(v.CreatedAt.UTC().Format(time.RFC3339))
	data.CreatedBy = types.StringValue(v.CreatedBy)
	data.Size = types.Int64Value(v.Size)
	data.Candidate = types.BoolValue(v.Candidate)
	var diags diag.Diagnostics
	data.Components, diags = componentSummaries(ctx, v.Components)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &data)...)
}

// componentSummaries converts the platform's component summaries.
func componentSummaries(ctx context.Context, cs []client.ComponentSummary) (types.List, diag.Diagnostics) {
	out := make([]componentSummaryModel, 0, len(cs))
	for _, c := range cs {
		out = append(out, componentSummaryModel{
			Name:   types.StringValue(c.Name),
			Kind:   types.StringValue(c.Kind),
			Format: types.StringValue(c.Format),
			Size:   types.Int64Value(c.Size),
			Chunks: types.Int64Value(int64(c.Chunks)),
			Files:  types.Int64Value(int64(c.Files)),
		})
	}
	return objectList(ctx, out, componentSummaryAttrTypes, false)
}
