package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// KubernetesConfig is the provider's default cluster connection after
// environment fallbacks. Resources that target a cluster build their
// connection from it (overriding fields they set themselves).
type KubernetesConfig struct {
	ConfigPath           string
	ConfigContext        string
	Host                 string
	Token                string
	ClusterCACertificate string
	// AgentImage is the provider's agent_image (or UNIKUBE_AGENT_IMAGE):
	// the agent image of applies that do not name their own.
	AgentImage string
}

// providerData is what the provider's Configure hands to every resource and
// data source: one platform client and the default cluster connection.
type providerData struct {
	client     *client.Client
	kubernetes KubernetesConfig
	// caConfigMap: the provider's ca_configmap.
	caConfigMap string
}

// newProviderData builds the one platform client and checks that the
// platform answers and accepts the token, so a wrong endpoint or token fails
// the plan with a clear message instead of every resource failing later.
// credentials are a platform token, or an OIDC token to exchange for one.
type credentials struct{ token, oidcToken string }

func newProviderData(ctx context.Context, endpoint string, cred credentials, kube KubernetesConfig, version string, ca []byte, caConfigMap string) (*providerData, diag.Diagnostics) {
	var diags diag.Diagnostics
	c, err := client.New(client.Config{
		Endpoint:      endpoint,
		Token:         cred.token,
		CACertificate: ca,
		Logger:        slog.New(tflogHandler{ctx: ctx}),
		UserAgent:     "terraform-provider-unikube/" + version,
		// Never fall back to the process environment behind the provider's
		// back: Configure already applied the documented fallbacks.
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		diags.AddAttributeError(path.Root("endpoint"), "Invalid Unikube endpoint", err.Error())
		return nil, diags
	}
	if cred.token == "" && cred.oidcToken != "" {
		ex, err := c.ExchangeOIDCToken(ctx, cred.oidcToken, 0)
		if err != nil {
			diags.AddAttributeError(path.Root("oidc_token_file"), "OIDC token not exchanged",
				fmt.Sprintf("The platform at %s did not exchange the OIDC token for a platform token: %v", endpoint, err))
			return nil, diags
		}
		tflog.Debug(ctx, "exchanged the OIDC token for a platform token", map[string]any{"user": ex.User, "groups": ex.Groups, "expires_at": ex.ExpiresAt})
		c = c.WithToken(ex.AccessToken)
	}
	who, err := c.Whoami(ctx)
	switch {
	case errors.Is(err, client.ErrUntrustedCertificate):
		diags.AddAttributeError(path.Root("ca_certificate"), "Unikube platform certificate not trusted",
			err.Error())
		return nil, diags
	case errors.Is(err, client.ErrUnauthorized):
		diags.AddAttributeError(path.Root("token"), "Unikube token rejected",
			fmt.Sprintf("The platform at %s does not accept the token (unknown, revoked or expired). Check the provider's token or %s.", endpoint, envToken))
		return nil, diags
	case err != nil:
		diags.AddAttributeError(path.Root("endpoint"), "Unikube platform unreachable",
			fmt.Sprintf("Could not reach the platform at %s: %v. Check the endpoint (or %s) and that the server is running.", endpoint, err, envEndpoint))
		return nil, diags
	}
	tflog.Debug(ctx, "connected to the Unikube platform", map[string]any{"subject": who.Name, "admin": who.Admin})
	return &providerData{client: c, kubernetes: kube, caConfigMap: caConfigMap}, diags
}

// configureData extracts the provider data in a resource's or data source's
// Configure. It returns nil without a diagnostic while the provider is not
// configured yet (Terraform calls Configure early, e.g. during validate), and
// nil with an error diagnostic when the data has an unexpected type.
func configureData(data any, diags *diag.Diagnostics) *providerData {
	if data == nil {
		return nil
	}
	pd, ok := data.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data type",
			fmt.Sprintf("Expected *provider.providerData, got %T. This is a bug in the provider; please report it.", data))
		return nil
	}
	return pd
}

// tflogHandler sends the client's slog records (retries, failed attempts) to
// Terraform's log, so TF_LOG shows them and nothing is written to stderr.
type tflogHandler struct {
	ctx   context.Context
	attrs []slog.Attr
}

func (h tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make(map[string]any, r.NumAttrs()+len(h.attrs))
	for _, a := range h.attrs {
		fields[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Any()
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(h.ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(h.ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(h.ctx, r.Message, fields)
	default:
		tflog.Debug(h.ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return h
}

func (h tflogHandler) WithGroup(string) slog.Handler { return h }
