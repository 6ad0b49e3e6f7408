package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// kubernetesBlockWith is a kubernetes block with one mapping of component
// db carrying agent_resources.
func kubernetesBlockWith(t *testing.T, resources map[string]string) types.Object {
	t.Helper()
	ctx := context.Background()
	ot, ok := kubernetesBlock().Type().(types.ObjectType)
	lt, ok2 := ot.AttrTypes["mapping"].(types.ListType)
	if !ok || !ok2 {
		t.Fatal("the kubernetes block is not an object with a mapping list")
	}
	mapT, ok := lt.ElemType.(types.ObjectType)
	if !ok {
		t.Fatal("mapping is not a list of objects")
	}
	mapping := map[string]attr.Value{}
	for k, at := range mapT.AttrTypes {
		mapping[k] = nullOf(at)
	}
	mapping["component"] = types.StringValue("db")
	mapping["kind"], mapping["name"] = types.StringValue("StatefulSet"), types.StringValue("db")
	rv, d := types.MapValueFrom(ctx, types.StringType, resources)
	mustOK(t, d)
	mapping["agent_resources"] = rv
	mo, d := types.ObjectValue(mapT.AttrTypes, mapping)
	mustOK(t, d)
	block := map[string]attr.Value{}
	for k, at := range ot.AttrTypes {
		block[k] = nullOf(at)
	}
	block["namespace"] = types.StringValue("shop")
	block["mapping"], d = types.ListValue(mapT, []attr.Value{mo})
	mustOK(t, d)
	obj, d := types.ObjectValue(ot.AttrTypes, block)
	mustOK(t, d)
	return obj
}

func nullOf(t attr.Type) attr.Value {
	v, _ := t.ValueFromTerraform(context.Background(), tftypes.NewValue(t.TerraformType(context.Background()), nil))
	return v
}

func mustOK(t *testing.T, d diag.Diagnostics) {
	t.Helper()
	if d.HasError() {
		t.Fatal(d)
	}
}

// TestKubernetesBlock_AgentResourcesReachTheMapping: the mapping's
// agent_resources become the component's agent Job resources; a wrong key
// or quantity is an error on that attribute, at validation and decoding.
func TestKubernetesBlock_AgentResourcesReachTheMapping(t *testing.T) {
	ctx := context.Background()
	ref := statepkg.Ref{Project: "shop", State: "seed", Tag: "v1"}
	tg, d := decodeKubernetes(ctx, kubernetesBlockWith(t, map[string]string{"cpu": "500m", "limits.memory": "2Gi"}), KubernetesConfig{}, ref)
	mustOK(t, d)
	r := tg.Explicit[0].Resources
	if r == nil || r.Requests.Cpu().String() != "500m" || r.Limits.Cpu().String() != "500m" || r.Limits.Memory().String() != "2Gi" {
		t.Fatalf("resources %+v, want cpu 500m and a 2Gi memory limit", r)
	}
	bad := kubernetesBlockWith(t, map[string]string{"gpu": "1"})
	var vd diag.Diagnostics
	validateKubernetes(ctx, bad, types.StringNull(), &vd)
	if !vd.HasError() || !strings.Contains(vd[0].Detail(), `unknown key "gpu"`) {
		t.Fatalf("validate: %v, want an error naming the key", vd)
	}
	if _, d := decodeKubernetes(ctx, bad, KubernetesConfig{}, ref); !d.HasError() {
		t.Fatal("decode accepted an unknown resource key")
	}
}
