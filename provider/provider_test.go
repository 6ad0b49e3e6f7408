package provider

import (
	"context"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	acc "github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testAccProtoV6ProviderFactories serves the provider in-process to the real
// terraform CLI the acceptance tests drive.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"unikube": providerserver.NewProtocol6WithError(New("test")()),
}

// TestProvider_SchemasAreValid checks every schema the way Terraform would
// at startup (defaults, validators, nesting), without a platform.
func TestProvider_SchemasAreValid(t *testing.T) {
	ctx := context.Background()
	p := New("test")()

	var presp provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &presp)
	if presp.Diagnostics.HasError() {
		t.Fatalf("provider schema: %v", presp.Diagnostics)
	}
	if d := presp.Schema.ValidateImplementation(ctx); d.HasError() {
		t.Fatalf("provider schema: %v", d)
	}
	for _, f := range p.Resources(ctx) {
		r := f()
		var meta resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "unikube"}, &meta)
		var resp resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &resp)
		if resp.Diagnostics.HasError() {
			t.Fatalf("%s: %v", meta.TypeName, resp.Diagnostics)
		}
		if d := resp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Errorf("%s: %v", meta.TypeName, d)
		}
	}
	withEphemeral, ok := p.(provider.ProviderWithEphemeralResources)
	if !ok {
		t.Fatal("the provider offers no ephemeral resources")
	}
	for _, f := range withEphemeral.EphemeralResources(ctx) {
		e := f()
		var meta ephemeral.MetadataResponse
		e.Metadata(ctx, ephemeral.MetadataRequest{ProviderTypeName: "unikube"}, &meta)
		var resp ephemeral.SchemaResponse
		e.Schema(ctx, ephemeral.SchemaRequest{}, &resp)
		if resp.Diagnostics.HasError() {
			t.Fatalf("ephemeral %s: %v", meta.TypeName, resp.Diagnostics)
		}
		if d := resp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Errorf("ephemeral %s: %v", meta.TypeName, d)
		}
	}
	for _, f := range p.DataSources(ctx) {
		ds := f()
		var meta datasource.MetadataResponse
		ds.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "unikube"}, &meta)
		var resp datasource.SchemaResponse
		ds.Schema(ctx, datasource.SchemaRequest{}, &resp)
		if resp.Diagnostics.HasError() {
			t.Fatalf("%s: %v", meta.TypeName, resp.Diagnostics)
		}
		if d := resp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Errorf("%s: %v", meta.TypeName, d)
		}
	}
}

// TestAccProvider_ConfigurationErrorsAreClear: a wrong token, an unreachable
// platform and a missing or malformed endpoint each fail the plan with a
// message that says what to fix.
func TestAccProvider_ConfigurationErrorsAreClear(t *testing.T) {
	accPlatform(t)
	const config = `data "unikube_named_state" "test" {
  project = "shop"
  name    = "seed"
}`
	cases := []struct {
		name     string
		endpoint string // "" keeps the test platform's
		token    string // "" keeps the admin token
		unset    bool   // unset the endpoint entirely
		want     string
	}{
		{name: "wrong token", token: "uks_wrong-token-that-is-secret", want: `Unikube token rejected`},
		{name: "unreachable platform", endpoint: "http://127.0.0.1:1", want: `(?s)Unikube platform unreachable.*127\.0\.0\.1:1`},
		{name: "missing endpoint", unset: true, want: `(?s)Missing Unikube endpoint.*UNIKUBE_ENDPOINT`},
		{name: "endpoint that is not http", endpoint: "ftp://example.com", want: `Invalid Unikube endpoint`},
	}
	kubeBoth := `provider "unikube" {
  kubernetes {
    config_path = "/tmp/kubeconfig"
    host        = "https://127.0.0.1:6443"
  }
}
` + config
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.endpoint != "" {
				t.Setenv(envEndpoint, tc.endpoint)
			}
			if tc.unset {
				t.Setenv(envEndpoint, "")
			}
			if tc.token != "" {
				t.Setenv(envToken, tc.token)
			}
			acc.Test(t, acc.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []acc.TestStep{{
					Config:      config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
	t.Run("kubeconfig and host together", func(t *testing.T) {
		acc.Test(t, acc.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []acc.TestStep{{
				Config:      kubeBoth,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid Attribute Combination`),
			}},
		})
	})
}
