package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

var (
	_ ephemeral.EphemeralResource              = &TokenEphemeralResource{}
	_ ephemeral.EphemeralResourceWithConfigure = &TokenEphemeralResource{}
	_ ephemeral.EphemeralResourceWithClose     = &TokenEphemeralResource{}
)

// defaultEphemeralTTL is how long an ephemeral token lives unless told:
// long enough for one Terraform run, short enough to be useless if leaked.
const defaultEphemeralTTL = time.Hour

// privateTokenKey holds which token Close revokes.
const privateTokenKey = "token"

// NewTokenEphemeralResource is the factory of the ephemeral `unikube_token`.
func NewTokenEphemeralResource() ephemeral.EphemeralResource { return &TokenEphemeralResource{} }

// TokenEphemeralResource mints a short-lived token for one Terraform run
// and revokes it when the run is done; the secret never reaches the state
// or the plan.
type TokenEphemeralResource struct {
	client *client.Client
}

// tokenEphemeralModel is the configuration and result of the ephemeral
// `unikube_token`.
type tokenEphemeralModel struct {
	Name      types.String `tfsdk:"name"`
	User      types.String `tfsdk:"user"`
	Groups    types.Set    `tfsdk:"groups"`
	TTL       types.String `tfsdk:"ttl"`
	ExpiresAt types.String `tfsdk:"expires_at"`
	Subject   types.String `tfsdk:"subject"`
	Token     types.String `tfsdk:"token"`
}

// closeTarget is what Open tells Close to revoke.
type closeTarget struct {
	User string `json:"user"`
	Name string `json:"name"`
}

func (e *TokenEphemeralResource) Metadata(ctx context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_token"
}

func (e *TokenEphemeralResource) Schema(ctx context.Context, req ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A short-lived API token for one Terraform run (Terraform 1.10 or later): created when Terraform opens it, " +
			"revoked when Terraform closes it at the end of the run, and expiring after `ttl` in any case. " +
			"The secret is never written to the plan or the state; pass it to where it is needed in the same run " +
			"(a provider's configuration, a write-only argument). For a lasting token, use the resource `unikube_token`.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the token; default `terraform-` and a random suffix. It must not be the name of a live token of `user`.",
				Optional:            true,
				Computed:            true,
				Validators:          tokenNameValidators(),
			},
			"user": schema.StringAttribute{
				MarkdownDescription: "User the token acts as. Defaults to the provider token's user; the admin token must set it.",
				Optional:            true,
				Computed:            true,
				Validators:          tokenNameValidators(),
			},
			"groups": schema.SetAttribute{
				MarkdownDescription: "Groups the token acts in.",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.Set{setvalidator.ValueStringsAre(tokenNameValidators()...)},
			},
			"ttl": schema.StringAttribute{
				MarkdownDescription: "Lifetime, default `1h`.",
				Optional:            true,
				Validators:          []validator.String{validators.Duration()},
			},
			"expires_at": schema.StringAttribute{MarkdownDescription: "When the token expires (RFC 3339).", Computed: true},
			"subject":    schema.StringAttribute{MarkdownDescription: "The grant subject naming this token, `token:USER:NAME`.", Computed: true},
			"token":      schema.StringAttribute{MarkdownDescription: "The secret (`uks_...`).", Computed: true, Sensitive: true},
		},
	}
}

func (e *TokenEphemeralResource) Configure(ctx context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	if pd := configureData(req.ProviderData, &resp.Diagnostics); pd != nil {
		e.client = pd.client
	}
}

func (e *TokenEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m tokenEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ttl := defaultEphemeralTTL
	if !m.TTL.IsNull() {
		var err error
		if ttl, err = time.ParseDuration(m.TTL.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("ttl"), "Invalid duration", err.Error())
			return
		}
	}
	name := m.Name.ValueString()
	if m.Name.IsNull() || m.Name.IsUnknown() {
		var b [6]byte
		_, _ = rand.Read(b[:])
		name = "terraform-" + hex.EncodeToString(b[:])
	}
	treq := client.TokenRequest{Name: name, User: m.User.ValueString(), TTLSeconds: int64((ttl + time.Second - 1) / time.Second)}
	if !m.Groups.IsNull() && !m.Groups.IsUnknown() {
		resp.Diagnostics.Append(m.Groups.ElementsAs(ctx, &treq.Groups, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	t, err := e.client.CreateToken(ctx, treq)
	if err != nil {
		addClientError(&resp.Diagnostics, "Could not create token "+name, err)
		return
	}
	target, err := json.Marshal(closeTarget{User: t.User, Name: t.Name})
	if err != nil {
		resp.Diagnostics.AddError("Could not remember the token to revoke", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateTokenKey, target)...)
	m.Name, m.User = types.StringValue(t.Name), types.StringValue(t.User)
	m.Subject = types.StringValue("token:" + t.User + ":" + t.Name)
	m.Token = types.StringValue(t.Secret)
	m.ExpiresAt = types.StringNull()
	if t.ExpiresAt != nil {
		m.ExpiresAt = types.StringValue(t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// Close revokes the token at the end of the run (and with it any token it
// minted); one already gone is fine.
func (e *TokenEphemeralResource) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	b, diags := req.Private.GetKey(ctx, privateTokenKey)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() || len(b) == 0 {
		return
	}
	var target closeTarget
	if err := json.Unmarshal(b, &target); err != nil {
		resp.Diagnostics.AddError("Could not read which token to revoke", err.Error())
		return
	}
	err := e.client.RevokeUserToken(ctx, target.User, target.Name)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		addClientError(&resp.Diagnostics, "Could not revoke the ephemeral token "+target.Name+" (it still expires at its ttl)", err)
	}
}
