package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccNamedStateDataSource_ListsVersionsAndGrants(t *testing.T) {
	admin := accPlatform(t)
	ctx := t.Context()
	if _, err := admin.CreateState(ctx, testProject, "seed", "shop data"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutGrant(ctx, testProject, "seed", "group:shop-devs", "applier"); err != nil {
		t.Fatal(err)
	}
	// A project-wide grant is not a grant on the state.
	if _, err := admin.PutGrant(ctx, testProject, "", "user:bob", "viewer"); err != nil {
		t.Fatal(err)
	}
	pushVersion(t, admin, "v1", []byte("first dump"))
	pushVersion(t, admin, "v2", []byte("second dump"))
	const ds = "data.unikube_named_state.test"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: `data "unikube_named_state" "test" {
  project = "shop"
  name    = "seed"
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("id"), knownvalue.StringExact("shop/seed")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("description"), knownvalue.StringExact("shop data")),
					// Newest first.
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("versions"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"tag": knownvalue.StringExact("v2"), "digest": knownvalue.StringRegexp(digestPattern)}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"tag": knownvalue.StringExact("v1")}),
					})),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("access"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"subject": knownvalue.StringExact("group:shop-devs"),
							"role":    knownvalue.StringExact("applier"),
						}),
					})),
				},
			},
			{
				Config: `data "unikube_named_state" "test" {
  project = "shop"
  name    = "nope"
}`,
				ExpectError: regexp.MustCompile(`(?s)Could not read state shop/nope.*does not exist`),
			},
			// End on a valid configuration: the post-test destroy uses it.
			{Config: `data "unikube_named_state" "test" {
  project = "shop"
  name    = "seed"
}`},
		},
	})
}
