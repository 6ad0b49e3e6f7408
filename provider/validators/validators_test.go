package validators_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

type validatorCase struct {
	name    string
	value   types.String
	wantErr string // substring of the error detail; "" means valid
}

func runValidator(t *testing.T, v validator.String, cases []validatorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := path.Root("attr").AtName("nested")
			req := validator.StringRequest{Path: p, ConfigValue: tc.value}
			var resp validator.StringResponse
			v.ValidateString(context.Background(), req, &resp)
			if tc.wantErr == "" {
				if resp.Diagnostics.HasError() {
					t.Fatalf("want valid, got %v", resp.Diagnostics)
				}
				return
			}
			if resp.Diagnostics.ErrorsCount() != 1 {
				t.Fatalf("want one error containing %q, got %v", tc.wantErr, resp.Diagnostics)
			}
			d := resp.Diagnostics.Errors()[0]
			if !strings.Contains(d.Detail(), tc.wantErr) {
				t.Errorf("detail %q does not contain %q", d.Detail(), tc.wantErr)
			}
			wp, ok := d.(interface{ Path() path.Path })
			if !ok || !wp.Path().Equal(p) {
				t.Errorf("diagnostic is not attached to the attribute path %s: %#v", p, d)
			}
		})
	}
}

func TestReference_AcceptsReadableRefsAndRefusesOthers(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	runValidator(t, validators.Reference(), []validatorCase{
		{"null is left to Required", types.StringNull(), ""},
		{"unknown is checked later", types.StringUnknown(), ""},
		{"project and state", types.StringValue("shop/seed"), ""},
		{"literal tag", types.StringValue("shop/seed:v1.2"), ""},
		{"latest", types.StringValue("shop/seed:@latest"), ""},
		{"candidate", types.StringValue("shop/seed:@candidate"), ""},
		{"digest", types.StringValue("shop/seed@" + digest), ""},
		{"no project", types.StringValue("seed"), "project/state"},
		{"uppercase name", types.StringValue("Shop/seed"), "project"},
		{"bad digest", types.StringValue("shop/seed@sha256:xyz"), "sha256"},
		{"random names no existing version", types.StringValue("shop/seed:@random"), "only names a version to be created"},
		{"new candidate names no existing version", types.StringValue("shop/seed:@new-candidate"), "only names a version to be created"},
	})
}

func TestTagExpressionForWrite_AcceptsNewTagsOnly(t *testing.T) {
	runValidator(t, validators.TagExpressionForWrite(), []validatorCase{
		{"literal", types.StringValue("v1.2.3"), ""},
		{"candidate literal", types.StringValue("[cand]-v2"), ""},
		{"random", types.StringValue("@random"), ""},
		{"new candidate", types.StringValue("@new-candidate"), ""},
		{"latest selects an existing version", types.StringValue("@latest"), "selects an existing version"},
		{"digest selects an existing version", types.StringValue("sha256:" + strings.Repeat("0", 64)), "selects an existing version"},
		{"bad characters", types.StringValue("v1 2"), "tag"},
		{"unknown expression", types.StringValue("@newest"), "@newest"},
	})
}

func TestTagExpressionForRead_AcceptsSelectorsOnly(t *testing.T) {
	runValidator(t, validators.TagExpressionForRead(), []validatorCase{
		{"latest", types.StringValue("@latest"), ""},
		{"candidate", types.StringValue("@candidate"), ""},
		{"literal", types.StringValue("v1"), ""},
		{"random is write-only", types.StringValue("@random"), "only names a version to be created"},
	})
}

func TestDNSName_AcceptsLowercaseLabels(t *testing.T) {
	runValidator(t, validators.DNSName(), []validatorCase{
		{"simple", types.StringValue("shop"), ""},
		{"with dash and digits", types.StringValue("shop-2"), ""},
		{"uppercase", types.StringValue("Shop"), "lowercase DNS label"},
		{"leading dash", types.StringValue("-shop"), "-shop"},
		{"too long", types.StringValue(strings.Repeat("a", 64)), "63"},
		{"empty", types.StringValue(""), "1-63"},
	})
}

func TestEndpointURL_AcceptsSupportedSchemesWithoutEchoingSecrets(t *testing.T) {
	runValidator(t, validators.EndpointURL(), []validatorCase{
		{"postgres", types.StringValue("postgres://app:s3cret@127.0.0.1:5432/shop"), ""},
		{"postgresql", types.StringValue("postgresql://127.0.0.1/shop"), ""},
		{"mysql", types.StringValue("mysql://root@db:3306/shop"), ""},
		{"redis", types.StringValue("redis://127.0.0.1:6379/0"), ""},
		{"file", types.StringValue("file:///var/lib/data"), ""},
		{"ftp is unsupported", types.StringValue("ftp://user:s3cret@host/"), `scheme is "ftp"`},
		{"no scheme", types.StringValue("/var/lib/data"), "(none)"},
		{"relative file", types.StringValue("file://data/dir"), "absolute path"},
		{"postgres without host", types.StringValue("postgres:///shop"), "needs a host"},
	})
	// The password of a rejected URL never reaches the diagnostic.
	var resp validator.StringResponse
	validators.EndpointURL().ValidateString(context.Background(), validator.StringRequest{
		Path: path.Root("url"), ConfigValue: types.StringValue("ftp://u:hunter2@h/"),
	}, &resp)
	for _, d := range resp.Diagnostics {
		if strings.Contains(d.Detail()+d.Summary(), "hunter2") {
			t.Fatalf("diagnostic echoes the secret: %v", d)
		}
	}
}

func TestDNSSubdomain_AcceptsKubernetesObjectNames(t *testing.T) {
	runValidator(t, validators.DNSSubdomain(), []validatorCase{
		{"simple", types.StringValue("db-credentials"), ""},
		{"dotted", types.StringValue("shop.db.v1"), ""},
		{"uppercase", types.StringValue("DB"), "1-253"},
		{"underscore", types.StringValue("db_creds"), "1-253"},
		{"too long", types.StringValue(strings.Repeat("a", 254)), "1-253"},
	})
}

func TestSubject_AcceptsUserGroupAndTokenSubjects(t *testing.T) {
	runValidator(t, validators.Subject(), []validatorCase{
		{"user", types.StringValue("user:alice@example.com"), ""},
		{"group", types.StringValue("group:shop-devs"), ""},
		{"token", types.StringValue("token:ci_1"), ""},
		{"token of a user", types.StringValue("token:ci-bot:ci_1"), ""},
		{"token with empty user", types.StringValue("token::ci"), "user:NAME"},
		{"user with two names", types.StringValue("user:a:b"), "user:NAME"},
		{"no kind", types.StringValue("alice"), "user:NAME"},
		{"unknown kind", types.StringValue("team:shop"), "user:NAME"},
		{"empty name", types.StringValue("user:"), "user:NAME"},
	})
}
