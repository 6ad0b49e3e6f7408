package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/access"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// kubeApplyID is the id of an in-cluster apply: its namespace and the
// release its records are named after, unique per target.
func kubeApplyID(t *kubernetesTarget) types.String {
	return types.StringValue(t.Namespace + "/" + t.Release)
}

// ImportState adopts an apply. `namespace/release` adopts the newest
// apply record of a kubernetes target (the record Secret fills the block,
// digest, record and results, so the next plan is empty when the
// configuration applies that version). Any other ID is the reference the
// apply applies (e.g. `shop/seed:v1.2`): the next plan asks the configured
// targets what they hold.
func (r *StateApplyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	ref, refErr := statepkg.ParseRef(req.ID)
	ns, release, twoNames := strings.Cut(req.ID, "/")
	if twoNames && statepkg.ValidateName(ns) == nil && statepkg.ValidateName(release) == nil {
		rec, err := r.lastRecord(ctx, ns, release)
		if rec != nil {
			resp.Diagnostics.Append(importRecord(ctx, resp, ns, release, rec)...)
			return
		}
		// Not an in-cluster apply: a reference the platform must know.
		if _, rerr := r.client.Resolve(ctx, ref); rerr != nil {
			why := fmt.Sprintf("namespace %s has no apply records of release %s", ns, release)
			if err != nil {
				why = err.Error()
			}
			resp.Diagnostics.AddError("Nothing to import",
				fmt.Sprintf("%q is neither the namespace/release of an in-cluster apply (%s) nor a state reference the platform resolves (%v). "+
					"Import an in-cluster apply as NAMESPACE/RELEASE, one to endpoints by its reference, e.g. shop/seed:v1.2.", req.ID, why, rerr))
			return
		}
	}
	if refErr != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import an in-cluster apply as NAMESPACE/RELEASE (e.g. `terraform import ADDRESS dev-alice/shop`), "+
				"an apply to endpoints by the reference it applies (e.g. `shop/seed`): %v", refErr))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), ref.StateName())...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("state"), req.ID)...)
}

// lastRecord returns the newest apply record of release in ns through the
// provider's cluster connection; nil when there is none or no cluster.
func (r *StateApplyResource) lastRecord(ctx context.Context, ns, release string) (*records.Record, error) {
	cl, err := access.Connect(connection(kubernetesTargetModel{Namespace: types.StringValue(ns)}, r.kube))
	if errors.Is(err, access.ErrNoCluster) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the cluster: %w", err)
	}
	return records.Last(ctx, cl.Client, ns, release, "")
}

// importRecord fills the imported state from record rec of release in ns.
func importRecord(ctx context.Context, resp *resource.ImportStateResponse, ns, release string, rec *records.Record) diag.Diagnostics {
	var diags diag.Diagnostics
	set := func(p path.Path, v any) { diags.Append(resp.State.SetAttribute(ctx, p, v)...) }
	k := path.Root("kubernetes")
	set(path.Root("id"), ns+"/"+release)
	set(path.Root("state"), rec.State+"@"+rec.Digest)
	set(path.Root("digest"), rec.Digest)
	set(path.Root("version_tag"), rec.Tag)
	set(path.Root("on_destroy"), onDestroyKeep)
	set(k.AtName("namespace"), ns)
	set(k.AtName("release"), release)
	set(k.AtName("quiesce"), true)
	set(path.Root("record"), int64(rec.Revision))
	if rec.Status == records.StatusApplied {
		// A failed or partial newest record leaves applied_at unset: the
		// next plan then shows what is missing and re-applies it.
		set(path.Root("applied_at"), rec.Time.UTC().Format(time.RFC3339))
	}
	var m stateApplyResourceModel
	diags.Append(setKubeResults(ctx, rec, &m)...)
	set(path.Root("results"), m.Results)
	items := make([]restorePlanModel, 0, len(rec.Components))
	for _, c := range rec.Components {
		items = append(items, restorePlanModel{
			Component: types.StringValue(c.Name), Kind: types.StringValue(c.Kind), Target: types.StringValue(ns),
			Action: types.StringValue("skip"), Reason: types.StringValue(fmt.Sprintf("imported from record %s", records.SecretName(release, rec.Revision))),
			Strategy: types.StringValue(c.Strategy), Atomic: types.BoolValue(true), Bytes: types.Int64Value(0), Files: types.Int64Value(0),
		})
	}
	rp, d := objectList(ctx, items, restorePlanAttrTypes, false)
	diags.Append(d...)
	set(path.Root("restore_plan"), rp)
	return diags
}
