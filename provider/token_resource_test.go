package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// A CI token that acts as user ci-bot in group payments-devs, and holds
// applier on the project through a grant to the token itself.
const tokenConfig = `
resource "unikube_project" "payments" {
  name                = "payments"
  deletion_protection = false
}

resource "unikube_token" "deploy" {
  name   = "deploy"
  user   = "ci-bot"
  groups = ["payments-devs"]
  ttl    = "720h"
}

resource "unikube_project_access" "deploy" {
  project = unikube_project.payments.name
  subject = unikube_token.deploy.subject
  role    = "applier"
}
`

// secretOf reads a resource's secret from the state a check sees.
func secretOf(s *terraform.State, addr string) (string, error) {
	rs, ok := s.RootModule().Resources[addr]
	if !ok || rs.Primary == nil {
		return "", fmt.Errorf("%s is not in the state", addr)
	}
	return rs.Primary.Attributes["token"], nil
}

// checkTokenWorks checks the token in addr's state is live on the platform,
// acts as ci-bot in payments-devs and may read project payments; it
// records the secret in *secret.
func checkTokenWorks(t *testing.T, addr string, secret *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		sec, err := secretOf(s, addr)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(sec, "uks_") {
			return fmt.Errorf("%s.token is %d characters, not a platform secret", addr, len(sec))
		}
		*secret = sec
		c := accClient(t, sec)
		who, err := c.Whoami(context.Background())
		if err != nil {
			return fmt.Errorf("whoami with the token: %w", err)
		}
		if who.User != "ci-bot" || fmt.Sprint(who.Groups) != "[payments-devs]" {
			return fmt.Errorf("the token acts as %+v, want ci-bot in payments-devs", who)
		}
		if _, err := c.GetProject(context.Background(), "payments"); err != nil {
			return fmt.Errorf("the token's grant on payments: %w", err)
		}
		return nil
	}
}

// checkRevoked fails unless the platform refuses secret.
func checkRevoked(t *testing.T, what string, secret *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if *secret == "" {
			return fmt.Errorf("no secret of %s recorded", what)
		}
		if _, err := accClient(t, *secret).Whoami(context.Background()); !errors.Is(err, client.ErrUnauthorized) {
			return fmt.Errorf("%s: want the secret refused, got %v", what, err)
		}
		return nil
	}
}

func TestAccTokenResource_Lifecycle(t *testing.T) {
	admin := accPlatform(t)
	ctx := context.Background()
	const addr = "unikube_token.deploy"
	var first, second string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		// Destroy revokes the token.
		CheckDestroy: checkRevoked(t, "the destroyed token", &second),
		Steps: []resource.TestStep{
			{
				Config: tokenConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate),
						plancheck.ExpectSensitiveValue(addr, tfjsonpath.New("token")),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("subject"), knownvalue.StringExact("token:ci-bot:deploy")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_by"), knownvalue.StringExact("admin")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("expires_at"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-`))),
					statecheck.ExpectSensitiveValue(addr, tfjsonpath.New("token")),
				},
				Check: checkTokenWorks(t, addr, &first),
			},
			// The secret is set once: a refresh and plan keep it and change nothing.
			{
				Config: tokenConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					sec, err := secretOf(s, addr)
					if err != nil {
						return err
					}
					if sec != first {
						return errors.New("the secret changed without a replacement")
					}
					return nil
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "ci-bot/deploy",
				ImportStateVerify: true,
				// The secret cannot be read back; ttl lives only in the configuration.
				ImportStateVerifyIgnore: []string{"token", "ttl"},
			},
			// Drift: a token revoked through the API shows as a token to
			// create; the new one has a new secret under the same name, and
			// the grant to the token's subject holds for it.
			{
				PreConfig: func() {
					if err := admin.RevokeUserToken(ctx, "ci-bot", "deploy"); err != nil {
						t.Fatal(err)
					}
				},
				Config: tokenConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("unikube_project_access.deploy", plancheck.ResourceActionNoop),
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRevoked(t, "the revoked token", &first),
					checkTokenWorks(t, addr, &second),
				),
			},
			// Changing the groups replaces the token.
			{
				Config: strings.Replace(tokenConfig, `groups = ["payments-devs"]`, `groups = ["payments-devs", "qa"]`, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: func(s *terraform.State) error {
					var err error
					second, err = secretOf(s, addr)
					return err
				},
			},
		},
	})
}

// TestAccTokenResource_UserMayOnlyMintForThemself: with a user's token, the
// provider creates tokens for that user (user defaults to it) and fails
// clearly for another user or a group the user is not in.
func TestAccTokenResource_UserMayOnlyMintForThemself(t *testing.T) {
	admin := accPlatform(t)
	tok, err := admin.CreateToken(context.Background(), client.TokenRequest{Name: "laptop", User: "olga", Groups: []string{"payments-devs"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envToken, tok.Secret)
	const addr = "unikube_token.mine"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: `resource "unikube_token" "mine" {
  name   = "scripts"
  groups = ["payments-devs"]
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("user"), knownvalue.StringExact("olga")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_by"), knownvalue.StringExact("user:olga")),
					// Capped at the creating token's expiry: none here.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("expires_at"), knownvalue.Null()),
				},
			},
			{
				Config: `resource "unikube_token" "mine" {
  name = "scripts"
  user = "ci-bot"
}`,
				ExpectError: regexp.MustCompile(`(?s)Could not create token scripts.*only for your own\s+user`),
			},
			{
				Config: `resource "unikube_token" "mine" {
  name   = "scripts"
  groups = ["admins"]
}`,
				ExpectError: regexp.MustCompile(`(?s)Could not create token scripts.*not in\s+group`),
			},
		},
	})
}

// TestAccTokenEphemeral_RevokedAfterTheRun: the ephemeral token works
// during the run (the echo provider hands it on like a provider
// configuration would), never reaches the plan, and is revoked when the
// run ends.
func TestAccTokenEphemeral_RevokedAfterTheRun(t *testing.T) {
	accPlatform(t)
	var secret string
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"unikube": testAccProtoV6ProviderFactories["unikube"],
			"echo":    echoprovider.NewProviderServer(),
		},
		Steps: []resource.TestStep{{
			Config: `
ephemeral "unikube_token" "run" {
  user   = "ci-bot"
  groups = ["payments-devs"]
  ttl    = "10m"
}

provider "echo" {
  data = ephemeral.unikube_token.run
}

resource "echo" "token" {}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("user"), knownvalue.StringExact("ci-bot")),
				statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("name"), knownvalue.StringRegexp(regexp.MustCompile(`^terraform-[0-9a-f]{12}$`))),
				statecheck.ExpectKnownValue("echo.token", tfjsonpath.New("data").AtMapKey("subject"), knownvalue.StringRegexp(regexp.MustCompile(`^token:ci-bot:terraform-`))),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				func(s *terraform.State) error {
					rs := s.RootModule().Resources["echo.token"]
					secret = rs.Primary.Attributes["data.token"]
					exp, err := time.Parse(time.RFC3339, rs.Primary.Attributes["data.expires_at"])
					if err != nil {
						return err
					}
					if d := time.Until(exp); d <= 0 || d > 10*time.Minute {
						return fmt.Errorf("expires in %v, want within the 10m ttl", d)
					}
					return nil
				},
				checkRevoked(t, "the ephemeral token after the run", &secret),
			),
		}},
	})
}
