// Package provider is the Terraform provider `unikube`: resources and data
// sources that translate between Terraform and the platform client
// (internal/client) and the restore/capture core. Business logic lives in
// internal/; this package only maps schemas to calls.
package provider

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework-validators/providervalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
)

var (
	_ provider.Provider                       = &UnikubeProvider{}
	_ provider.ProviderWithConfigValidators   = &UnikubeProvider{}
	_ provider.ProviderWithEphemeralResources = &UnikubeProvider{}
)

// Environment variables the provider falls back to.
const (
	envEndpoint   = "UNIKUBE_ENDPOINT"
	envToken      = "UNIKUBE_TOKEN"
	envKubeconfig = "KUBECONFIG"
	// A private CA: PEM content, else a file holding it.
	envCACertificate = "UNIKUBE_CA_CERTIFICATE"
	envCAFile        = "UNIKUBE_CA_FILE"
	envAgentImage    = "UNIKUBE_AGENT_IMAGE"
)

// UnikubeProvider is the `unikube` provider.
type UnikubeProvider struct {
	// version is "dev" for local builds, the release version otherwise.
	version string
}

// UnikubeProviderModel is the provider configuration.
type UnikubeProviderModel struct {
	Endpoint   types.String `tfsdk:"endpoint"`
	Token      types.String `tfsdk:"token"`
	AgentImage types.String `tfsdk:"agent_image"`
	// OIDCTokenFile: an OIDC token to exchange for a platform token.
	OIDCTokenFile types.String     `tfsdk:"oidc_token_file"`
	Kubernetes    *KubernetesModel `tfsdk:"kubernetes"`
	// CACertificate and CAConfigMap: a private CA (see the schema).
	CACertificate types.String `tfsdk:"ca_certificate"`
	CAConfigMap   types.String `tfsdk:"ca_configmap"`
}

// KubernetesModel is the provider's default cluster connection, used by
// resources that target Kubernetes when they do not override it.
type KubernetesModel struct {
	ConfigPath           types.String `tfsdk:"config_path"`
	ConfigContext        types.String `tfsdk:"config_context"`
	Host                 types.String `tfsdk:"host"`
	Token                types.String `tfsdk:"token"`
	ClusterCACertificate types.String `tfsdk:"cluster_ca_certificate"`
}

// New returns the provider factory providerserver.Serve and the acceptance
// tests use.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &UnikubeProvider{version: version}
	}
}

func (p *UnikubeProvider) Metadata(ctx context.Context, req provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "unikube"
	resp.Version = p.version
}

func (p *UnikubeProvider) Schema(ctx context.Context, req provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The `unikube` provider manages named states (versioned packages of an application's data), " +
			"their access grants and cluster scripts on a Unikube platform server, and applies states to environments.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "Base URL of the Unikube platform server, e.g. `https://unikube.example.com`. " +
					"Defaults to the `" + envEndpoint + "` environment variable.",
				Optional: true,
			},
			"token": schema.StringAttribute{
				MarkdownDescription: "API token for the platform server. Defaults to the `" + envToken + "` environment variable. " +
					"Prefer the environment variable so the token stays out of configuration files.",
				Optional:  true,
				Sensitive: true,
			},
			"oidc_token_file": schema.StringAttribute{
				MarkdownDescription: "Path of a file holding an OpenID Connect token of the provider the platform trusts " +
					"(e.g. a CI system's workload identity token, requested for an audience the platform accepts); the provider " +
					"exchanges it for a short-lived platform token (`POST /api/v1/token-exchange`) acting as the token's user and groups. " +
					"Used when no `token` is set. Defaults to the `" + client.EnvOIDCTokenFile + "` environment variable; the token itself " +
					"may instead be in `" + client.EnvOIDCToken + "`. The token is never part of the configuration.",
				Optional: true,
			},
			"ca_certificate": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded certificate(s) of a private CA that signed the platform's TLS certificate, " +
					"trusted in addition to the system's roots (verification is never turned off). " +
					"The agent Jobs of in-cluster applies get the same bundle, from a ConfigMap the apply creates in the target namespace " +
					"(`unikube-ca-<hash of the content>`, kept for later applies). " +
					"Defaults to the `" + envCACertificate + "` environment variable, else the content of the file `" + envCAFile + "` names.",
				Optional: true,
			},
			"ca_configmap": schema.StringAttribute{
				MarkdownDescription: "Name of a ConfigMap in the target namespace whose key `ca.crt` holds the CA bundle the agent Jobs " +
					"of in-cluster applies trust instead of `ca_certificate` (e.g. one kept by a trust manager). " +
					"Checked before anything is changed.",
				Optional: true,
			},
			"agent_image": schema.StringAttribute{
				MarkdownDescription: "Image of the in-cluster agent for every `unikube_state_apply` with a `kubernetes` block that does not set " +
					"its own `agent_image`. Defaults to the `" + envAgentImage + "` environment variable, else to the published image of " +
					"this provider's own version, `" + executor.DefaultAgentRepository + "/unikube-agent:<provider version>`. " +
					"The agent must be the same version as the provider: an apply whose agent reports another version fails " +
					"before anything is quiesced or changed. A development build of the provider (version `dev`) has no published " +
					"image: set this to an agent image built from the same checkout.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
		},
		Blocks: map[string]schema.Block{
			"kubernetes": schema.SingleNestedBlock{
				MarkdownDescription: "Default connection to the Kubernetes cluster that in-cluster applies target. " +
					"Either a kubeconfig (`config_path`, `config_context`; `" + envKubeconfig + "` is honoured) " +
					"or a direct connection (`host`, `token`, `cluster_ca_certificate`). " +
					"`unikube_state_apply` resources with a `kubernetes` block use it unless they set their own connection.",
				Attributes: map[string]schema.Attribute{
					"config_path": schema.StringAttribute{
						MarkdownDescription: "Path to a kubeconfig file. Defaults to the `" + envKubeconfig + "` environment variable.",
						Optional:            true,
					},
					"config_context": schema.StringAttribute{
						MarkdownDescription: "Context of the kubeconfig to use. Defaults to the kubeconfig's current context.",
						Optional:            true,
					},
					"host": schema.StringAttribute{
						MarkdownDescription: "URL of the Kubernetes API server, e.g. `https://127.0.0.1:6443`. Used instead of a kubeconfig.",
						Optional:            true,
					},
					"token": schema.StringAttribute{
						MarkdownDescription: "Bearer token for the Kubernetes API server.",
						Optional:            true,
						Sensitive:           true,
					},
					"cluster_ca_certificate": schema.StringAttribute{
						MarkdownDescription: "PEM-encoded CA certificate of the Kubernetes API server.",
						Optional:            true,
					},
				},
			},
		},
	}
}

// ConfigValidators refuse a kubernetes block that names both a kubeconfig and
// a direct connection: which one wins would be a guess.
func (p *UnikubeProvider) ConfigValidators(ctx context.Context) []provider.ConfigValidator {
	kube := path.MatchRoot("kubernetes")
	return []provider.ConfigValidator{
		providervalidator.Conflicting(kube.AtName("config_path"), kube.AtName("host")),
		providervalidator.Conflicting(kube.AtName("config_context"), kube.AtName("host")),
	}
}

func (p *UnikubeProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg UnikubeProviderModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// A value computed from another resource is unknown until apply; the
	// client cannot be built from it, so say which attribute to fix.
	if cfg.Endpoint.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Unknown Unikube endpoint",
			"The endpoint depends on a value that is only known after apply. Set it to a static value or use the "+envEndpoint+" environment variable.")
	}
	if cfg.Token.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Unknown Unikube token",
			"The token depends on a value that is only known after apply. Set it to a static value or use the "+envToken+" environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}

	endpoint := stringOrEnv(cfg.Endpoint, envEndpoint)
	token := stringOrEnv(cfg.Token, envToken)
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing Unikube endpoint",
			"Set the provider's endpoint attribute or the "+envEndpoint+" environment variable to the URL of the platform server.")
	}
	oidcToken := ""
	if token == "" {
		var err error
		if f := stringOrEnv(cfg.OIDCTokenFile, client.EnvOIDCTokenFile); f != "" && os.Getenv(client.EnvOIDCToken) == "" {
			oidcToken, err = client.ReadOIDCTokenFile(f)
		} else {
			oidcToken, err = client.OIDCTokenFromEnv(os.Getenv)
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("oidc_token_file"), "Unreadable OIDC token", err.Error())
		}
	}
	if token == "" && oidcToken == "" && !resp.Diagnostics.HasError() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Missing Unikube token",
			"Set the provider's token attribute or the "+envToken+" environment variable to an API token of the platform server, "+
				"or give an OIDC token to exchange for one (oidc_token_file, "+client.EnvOIDCTokenFile+" or "+client.EnvOIDCToken+").")
	}
	kube := resolveKubernetes(cfg.Kubernetes)
	ca := caCertificate(cfg.CACertificate, &resp.Diagnostics)
	kube.AgentImage = stringOrEnv(cfg.AgentImage, envAgentImage)
	if resp.Diagnostics.HasError() {
		return
	}

	ctx = tflog.SetField(ctx, "unikube_endpoint", endpoint)
	tflog.Debug(ctx, "configuring Unikube client")

	data, diags := newProviderData(ctx, endpoint, credentials{token: token, oidcToken: oidcToken}, kube, p.version, ca, cfg.CAConfigMap.ValueString())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.DataSourceData = data
	resp.ResourceData = data
	resp.EphemeralResourceData = data
}

func (p *UnikubeProvider) Resources(ctx context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewNamedStateResource,
		NewProjectResource,
		NewProjectAccessResource,
		NewScriptResource,
		NewStateApplyResource,
		NewTokenResource,
	}
}

func (p *UnikubeProvider) EphemeralResources(ctx context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{
		NewTokenEphemeralResource,
	}
}

func (p *UnikubeProvider) DataSources(ctx context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewNamedStateDataSource,
		NewProjectDataSource,
		NewProjectsDataSource,
		NewStateVersionDataSource,
	}
}

// stringOrEnv returns the configured value, or the environment variable when
// the attribute is not set.
func stringOrEnv(v types.String, env string) string {
	if !v.IsNull() && !v.IsUnknown() {
		return v.ValueString()
	}
	return os.Getenv(env)
}

// caCertificate is ca_certificate, else UNIKUBE_CA_CERTIFICATE, else the
// content of the file UNIKUBE_CA_FILE names (nil: the system's roots).
func caCertificate(v types.String, diags *diag.Diagnostics) []byte {
	if v.IsUnknown() {
		diags.AddAttributeError(path.Root("ca_certificate"), "Unknown CA certificate",
			"ca_certificate depends on a value that is only known after apply. Set it to a static value (e.g. file(\"ca.crt\")) or use the "+envCAFile+" environment variable.")
		return nil
	}
	b := []byte(stringOrEnv(v, envCACertificate))
	if f := os.Getenv(envCAFile); len(b) == 0 && f != "" {
		var err error
		if b, err = os.ReadFile(f); err != nil {
			diags.AddAttributeError(path.Root("ca_certificate"), "Cannot read the CA certificate file",
				fmt.Sprintf("%s names %s: %v", envCAFile, f, err))
			return nil
		}
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := client.CertPool(b); err != nil {
		diags.AddAttributeError(path.Root("ca_certificate"), "Invalid CA certificate", err.Error())
		return nil
	}
	return b
}

// resolveKubernetes fills the defaults of the kubernetes block. The cluster
// connection itself is only built by resources that target a cluster, so a
// configuration that never applies into Kubernetes needs no kubeconfig.
func resolveKubernetes(m *KubernetesModel) KubernetesConfig {
	var k KubernetesConfig
	if m != nil {
		k = KubernetesConfig{
			ConfigPath:           m.ConfigPath.ValueString(),
			ConfigContext:        m.ConfigContext.ValueString(),
			Host:                 m.Host.ValueString(),
			Token:                m.Token.ValueString(),
			ClusterCACertificate: m.ClusterCACertificate.ValueString(),
		}
	}
	if k.ConfigPath == "" && k.Host == "" {
		k.ConfigPath = os.Getenv(envKubeconfig)
	}
	return k
}
