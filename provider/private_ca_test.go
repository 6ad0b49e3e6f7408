package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestAccProvider_PrivateCA runs the real terraform CLI against the
// platform served over HTTPS by a CA made in the test: without the CA the
// plan fails at the provider's first call naming the URL, the x509 reason
// and ca_certificate; a bundle without a certificate is refused; with
// ca_certificate (or UNIKUBE_CA_FILE) resources and data sources work.
func TestAccProvider_PrivateCA(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc) to run it against a real platform and terraform CLI")
	}
	t.Setenv("CHECKPOINT_DISABLE", "1")
	ca := testenv.NewCA(t)
	srv := platformtest.Start(t, platformtest.WithPrivateCA(ca))
	t.Setenv(envEndpoint, srv.URL)
	t.Setenv(envToken, srv.AdminToken)
	t.Setenv(envCACertificate, "")
	t.Setenv(envCAFile, "")
	admin := srv.Admin(t)
	ctx := context.Background()
	if _, err := admin.CreateProject(ctx, testProject, ""); err != nil {
		t.Fatal(err)
	}
	const stateConfig = `resource "unikube_named_state" "test" {
  project             = "shop"
  name                = "seed"
  deletion_protection = false
}
`
	withCA := fmt.Sprintf("provider \"unikube\" {\n  ca_certificate = file(%q)\n}\n", ca.CertFile) + stateConfig
	const dataConfig = `data "unikube_named_state" "test" {
  project = "shop"
  name    = "seed"
}
`
	t.Run("without the CA", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config: stateConfig, PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Unikube platform certificate not trusted.*` + regexp.QuoteMeta(srv.URL) +
					`.*certificate\s+signed\s+by\s+unknown\s+authority.*ca_certificate`),
			}},
		})
	})
	t.Run("not a certificate", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config: "provider \"unikube\" {\n  ca_certificate = \"/etc/ssl/company-ca.crt\"\n}\n" + stateConfig, PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Invalid CA certificate.*no PEM certificate`),
			}},
		})
	})
	t.Run("ca_certificate and UNIKUBE_CA_FILE", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			CheckDestroy: checkGone("state shop/seed", func() error {
				_, err := admin.GetState(ctx, testProject, "seed")
				return err
			}),
			Steps: []resource.TestStep{
				{
					Config: withCA,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("unikube_named_state.test", tfjsonpath.New("id"), knownvalue.StringExact("shop/seed")),
					},
					Check: func(*terraform.State) error {
						_, err := admin.GetState(ctx, testProject, "seed")
						return err
					},
				},
				{
					PreConfig: func() { t.Setenv(envCAFile, ca.CertFile) },
					Config:    stateConfig + dataConfig,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("data.unikube_named_state.test", tfjsonpath.New("id"), knownvalue.StringExact("shop/seed")),
					},
				},
			},
		})
	})
}
