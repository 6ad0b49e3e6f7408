package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// testProject is the project every acceptance test works in.
const testProject = "shop"

// writeOnlyArguments skips a test whose configuration sets a write-only
// argument (endpoint and source URLs, default_wo, script variables) on a
// Terraform CLI older than 1.11, which rejects such configurations.
var writeOnlyArguments = []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)}

// digestPattern matches a version or content digest.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// accPlatform starts a real platform server for one acceptance test, points
// the provider at it through UNIKUBE_ENDPOINT and UNIKUBE_TOKEN (so the test
// configurations carry no secret), creates testProject and returns an admin
// client for checks. Without TF_ACC the test is skipped before anything
// starts, like resource.Test would.
func accPlatform(t *testing.T) *client.Client {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc) to run it against a real platform and terraform CLI")
	}
	// No update checks or telemetry from the terraform CLI in tests.
	t.Setenv("CHECKPOINT_DISABLE", "1")
	// A secret key, so sensitive script defaults (default_wo) can be sealed.
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Env = map[string]string{"UNIKUBE_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	}))
	t.Setenv(envEndpoint, srv.URL)
	t.Setenv(envToken, srv.AdminToken)
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(context.Background(), testProject, "acceptance tests"); err != nil {
		t.Fatalf("create project %s: %v", testProject, err)
	}
	return admin
}

// pushVersion stores a version of shop/seed with one postgres component
// holding data, the way a capture would, and returns it.
func pushVersion(t *testing.T, c *client.Client, tag string, data []byte) client.Version {
	const state = "seed"
	t.Helper()
	ctx := context.Background()
	store := statepkg.NewMemoryStore()
	comp, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom"},
		bytes.NewReader(data), statepkg.WriteOptions{})
	if err != nil {
		t.Fatalf("write component: %v", err)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: testProject + "/" + state, Components: []statepkg.Component{comp}}
	v, _, err := c.PushVersion(ctx, testProject, state, tag, m, store, client.TransferOptions{})
	if err != nil {
		t.Fatalf("push version %s: %v", tag, err)
	}
	return v
}

// checkNoSecretInState fails when any attribute of any resource in the
// state holds secret in clear.
func checkNoSecretInState(secret string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, m := range s.Modules {
			for addr, rs := range m.Resources {
				if rs.Primary == nil {
					continue
				}
				for k, v := range rs.Primary.Attributes {
					if strings.Contains(v, secret) {
						return fmt.Errorf("%s.%s holds the secret in clear", addr, k)
					}
				}
			}
		}
		return nil
	}
}

// expectNoSecretInPlan is a plan check that fails when secret appears in
// the values of the plan: resource changes, planned values or prior state.
// (The configuration section quotes the test's literal configuration, which
// is Terraform's business, not the provider's.)
type expectNoSecretInPlan string

func (e expectNoSecretInPlan) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	b, err := json.Marshal([]any{req.Plan.ResourceChanges, req.Plan.PlannedValues, req.Plan.PriorState, req.Plan.ResourceDrift})
	if err != nil {
		resp.Error = err
		return
	}
	if strings.Contains(string(b), string(e)) {
		resp.Error = fmt.Errorf("the plan holds the secret in clear")
	}
}

// checkGone returns a CheckDestroy that fails while get still finds the
// object.
func checkGone(what string, get func() error) func(*terraform.State) error {
	return func(*terraform.State) error {
		err := get()
		switch {
		case errors.Is(err, client.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("checking %s is gone: %w", what, err)
		}
		return fmt.Errorf("%s still exists after destroy", what)
	}
}

// accClient returns a client of the acceptance test's platform (started by
// accPlatform) acting with token.
func accClient(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoint: os.Getenv(envEndpoint), Token: token, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}
