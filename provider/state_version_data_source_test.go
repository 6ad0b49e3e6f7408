package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccStateVersionDataSource_ResolvesReferences(t *testing.T) {
	admin := accPlatform(t)
	if _, err := admin.CreateState(t.Context(), testProject, "seed", ""); err != nil {
		t.Fatal(err)
	}
	v1 := pushVersion(t, admin, "v1", []byte("first dump"))
	cand := pushVersion(t, admin, "[cand]-v2", []byte("candidate dump"))
	const ds = "data.unikube_state_version.test"
	config := func(ref string) string {
		return `data "unikube_state_version" "test" {
  reference = "` + ref + `"
}`
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// project/state means @latest: the newest non-candidate.
				Config: config("shop/seed"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("tag"), knownvalue.StringExact("v1")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("digest"), knownvalue.StringExact(v1.Digest)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("candidate"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("size"), knownvalue.Int64Exact(int64(len("first dump")))),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("components"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{
							"name":   knownvalue.StringExact("db"),
							"kind":   knownvalue.StringExact("postgres"),
							"size":   knownvalue.Int64Exact(int64(len("first dump"))),
							"chunks": knownvalue.Int64Exact(1),
						}),
					})),
				},
			},
			{
				Config: config("shop/seed:@candidate"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("tag"), knownvalue.StringExact("[cand]-v2")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("candidate"), knownvalue.Bool(true)),
				},
			},
			{
				Config: config("shop/seed@" + cand.Digest),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("tag"), knownvalue.StringExact("[cand]-v2")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("id"), knownvalue.StringExact("shop/seed@"+cand.Digest)),
				},
			},
			{
				Config:      config("shop/seed:v9"),
				ExpectError: regexp.MustCompile(`Could not resolve shop/seed:v9`),
			},
			{
				Config:      config("seed"),
				ExpectError: regexp.MustCompile(`Invalid state reference`),
			},
			{
				Config:      config("shop/seed:@random"),
				ExpectError: regexp.MustCompile(`only names a version to be created`),
			},
			// End on a valid configuration: the post-test destroy uses it.
			{Config: config("shop/seed:v1")},
		},
	})
}
