package provider

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// TestScriptToModel_NeverCopiesSensitiveDefaults: what the platform returns
// for a sensitive variable's default stays out of the Terraform state, while
// plain defaults and the configured default_wo_version are kept.
func TestScriptToModel_NeverCopiesSensitiveDefaults(t *testing.T) {
	ctx := context.Background()
	prior := scriptResourceModel{
		Variables:   types.ListNull(types.ObjectType{AttrTypes: scriptVariableAttrTypes}),
		Credentials: types.ListNull(types.ObjectType{AttrTypes: scriptCredentialAttrTypes}),
	}
	priorVars, d := objectList(ctx, []scriptVariableModel{{
		Name: types.StringValue("TOKEN"), Default: types.StringNull(), DefaultWO: types.StringNull(),
		DefaultWOVersion: types.Int64Value(3), Required: types.BoolValue(false), Sensitive: types.BoolValue(true),
	}}, scriptVariableAttrTypes, false)
	if d.HasError() {
		t.Fatal(d)
	}
	prior.Variables = priorVars
	got := client.Script{
		Project: "shop", Name: "s", Interpreter: "sh", CreatedAt: time.Unix(0, 0), ModifiedAt: time.Unix(0, 0),
		Variables: []client.Variable{
			{Name: "TOKEN", Default: "hunter2", Sensitive: true},
			{Name: "SIZE", Default: "10"},
		},
	}
	var out scriptResourceModel
	if d := scriptToModel(ctx, got, prior, &out); d.HasError() {
		t.Fatal(d)
	}
	var vars []scriptVariableModel
	if d := out.Variables.ElementsAs(ctx, &vars, false); d.HasError() {
		t.Fatal(d)
	}
	if len(vars) != 2 {
		t.Fatalf("got %d variables", len(vars))
	}
	if !vars[0].Default.IsNull() || !vars[0].DefaultWO.IsNull() {
		t.Errorf("sensitive default reached the state: %v / %v", vars[0].Default, vars[0].DefaultWO)
	}
	if vars[0].DefaultWOVersion.ValueInt64() != 3 {
		t.Errorf("default_wo_version not kept: %v", vars[0].DefaultWOVersion)
	}
	if vars[1].Default.ValueString() != "10" {
		t.Errorf("plain default lost: %v", vars[1].Default)
	}
	if !out.Credentials.IsNull() {
		t.Errorf("credentials omitted in config should stay null, got %v", out.Credentials)
	}
}
