package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/internal/contenthash"
)

// makeVersion captures the component sources into a new version of the
// state and records it in plan. The chunks stream straight to the
// platform's chunk store, which skips those it already has, so an unchanged
// file costs a HEAD request rather than an upload.
func (r *NamedStateResource) makeVersion(ctx context.Context, config tfsdk.Config, plan *namedStateResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	// Sources come from the configuration: write-only URLs are not in the
	// plan.
	var components types.List
	diags.Append(config.GetAttribute(ctx, path.Root("component"), &components)...)
	srcs, known, d := componentSources(ctx, components)
	diags.Append(d...)
	if diags.HasError() || len(srcs) == 0 {
		return diags
	}
	if !known {
		diags.AddAttributeError(path.Root("component"), "Component source unknown at apply",
			"A component's name, kind or path is still unknown; this is a bug in the provider or in Terraform.")
		return diags
	}
	if plan.ContentHash.IsUnknown() {
		// A path was only known after other resources applied; hash now so
		// the state records what this version was made from.
		digest, err := contenthash.Digest(ctx, hashSources(srcs), plan.CaptureTrigger.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("component"), "Cannot read component source", err.Error())
			return diags
		}
		plan.ContentHash = types.StringValue(digest)
	}
	project, name := plan.Project.ValueString(), plan.Name.ValueString()
	sources := make([]capture.Source, 0, len(srcs))
	for _, s := range srcs {
		u := s.Path
		if s.URL != "" {
			u = s.URL
		}
		sources = append(sources, capture.Source{Name: s.Name, Kind: componentKind(s.Kind), URL: u})
	}
	m, stats, err := capture.Capture(ctx, sources, r.client.Chunks(project, name), capture.Spec{
		State:    project + "/" + name,
		Revision: plan.Revision.ValueString(),
		Message:  plan.Message.ValueString(),
		Progress: func(e driver.Event) {
			tflog.Debug(ctx, "capture progress", map[string]any{
				"component": e.Component, "phase": e.Phase, "bytes": e.Bytes, "files": e.Files, "rows": e.Rows,
			})
		},
	})
	if err != nil {
		diags.AddAttributeError(path.Root("component"), "Could not capture the component sources", err.Error())
		return diags
	}
	for _, c := range stats.Components {
		tflog.Info(ctx, "captured component", map[string]any{
			"component": c.Name, "duration": c.Duration.String(),
			"chunks": c.Write.Chunks, "new_chunks": c.Write.NewChunks, "bytes": c.Write.Bytes,
		})
	}
	// The content hash goes with the version, so an import can tell that
	// the configured sources are the ones the newest version was made from.
	for i := range m.Components {
		if m.Components[i].Meta == nil {
			m.Components[i].Meta = map[string]string{}
		}
		m.Components[i].Meta[metaContentHash] = plan.ContentHash.ValueString()
	}
	v, err := r.client.CommitVersion(ctx, project, name, plan.Tag.ValueString(), m)
	if err != nil {
		addClientError(&diags, fmt.Sprintf("Could not commit the new version of %s/%s", project, name), err)
		return diags
	}
	setVersion(plan, v)
	return diags
}

// metaContentHash is the component meta key holding the content hash of
// the sources a version was made from (unikube_named_state.content_hash).
const metaContentHash = "contentHash"

// importedVersion finds the newest version of project/name and the content
// hash it was made from; hash is "" when the version does not say (made by
// other means than this resource), or there is no version.
func (r *NamedStateResource) importedVersion(ctx context.Context, project, name string) (v client.Version, hash string, err error) {
	v, err = r.client.Resolve(ctx, statepkg.Ref{Project: project, State: name})
	if errors.Is(err, client.ErrNotFound) {
		return v, "", nil
	}
	if err != nil {
		return v, "", err
	}
	m, _, err := r.client.GetManifest(ctx, project, name, v.Digest)
	if err != nil {
		return v, "", err
	}
	for i, c := range m.Components {
		h := c.Meta[metaContentHash]
		if h == "" || (i > 0 && h != hash) {
			return v, "", nil
		}
		hash = h
	}
	return v, hash, nil
}

// componentKind maps a component block's kind to the stored kind:
// elasticsearch is another name of opensearch (one driver speaks to both).
func componentKind(kind string) statepkg.Kind {
	if kind == "elasticsearch" {
		return statepkg.KindOpenSearch
	}
	return statepkg.Kind(kind)
}
