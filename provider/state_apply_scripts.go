package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/access"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/provider/validators"
)

// scriptModel is one pre_script or post_script block. Variables are
// write-only: they often hold credentials, so they are read from the
// configuration at apply time and never stored.
type scriptModel struct {
	Script    types.String `tfsdk:"script"`
	Variables types.Map    `tfsdk:"variables"`
	Namespace types.String `tfsdk:"namespace"`
	Timeout   types.String `tfsdk:"timeout"`
}

func scriptBlock(when string) schema.ListNestedBlock {
	return schema.ListNestedBlock{
		MarkdownDescription: "A cluster script (`unikube_script`) run as a Kubernetes Job " + when + ", in order. " +
			"A failed script fails the apply with the script's trace in the error.",
		NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
			"script": schema.StringAttribute{
				MarkdownDescription: "The script as `project/name`, e.g. `shop/anonymize`.",
				Required:            true,
				Validators:          []validator.String{validators.ProjectName()},
			},
			"variables": schema.MapAttribute{
				MarkdownDescription: "Values of the script's variables; the script's defaults fill the rest, and a missing " +
					"required variable fails the plan. Write-only: the values never reach the state (a change alone does not re-apply).",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				WriteOnly:   true,
			},
			"namespace": schema.StringAttribute{
				MarkdownDescription: "Namespace to run the script in. Defaults to the `kubernetes` block's namespace; required " +
					"with `endpoint` targets (the script then runs in the provider's default cluster).",
				Optional:   true,
				Validators: []validator.String{validators.DNSName()},
			},
			"timeout": schema.StringAttribute{
				MarkdownDescription: "How long the script may run, e.g. `10m`. Defaults to `30m`.",
				Optional:            true,
				Validators:          []validator.String{validators.Duration()},
			},
		}},
	}
}

// scriptRun is a decoded script block.
type scriptRun struct {
	attr      path.Path
	script    string
	vars      map[string]string
	namespace string
	conn      access.Config
	timeout   time.Duration
}

// decodeScripts reads the pre_script or post_script blocks of the
// configuration. Scripts run in the kubernetes target's namespace and
// cluster, else in their own namespace of the provider's default cluster.
func decodeScripts(ctx context.Context, cfg interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, name string, kube *kubernetesTarget, def KubernetesConfig) ([]scriptRun, diag.Diagnostics) {
	var diags diag.Diagnostics
	var l types.List
	diags.Append(cfg.GetAttribute(ctx, path.Root(name), &l)...)
	var sms []scriptModel
	diags.Append(listElements(ctx, l, &sms)...)
	if diags.HasError() || len(sms) == 0 {
		return nil, diags
	}
	out := make([]scriptRun, 0, len(sms))
	for i, sm := range sms {
		p := path.Root(name).AtListIndex(i)
		sr := scriptRun{attr: p, script: sm.Script.ValueString(), namespace: sm.Namespace.ValueString(), vars: map[string]string{}}
		if !sm.Variables.IsNull() && !sm.Variables.IsUnknown() {
			diags.Append(sm.Variables.ElementsAs(ctx, &sr.vars, false)...)
		}
		if !sm.Timeout.IsNull() {
			sr.timeout, _ = time.ParseDuration(sm.Timeout.ValueString())
		}
		switch {
		case kube != nil:
			sr.conn = kube.Conn
			if sr.namespace == "" {
				sr.namespace = kube.Namespace
			}
		default:
			sr.conn = connection(kubernetesTargetModel{}, def)
		}
		if sr.namespace == "" {
			diags.AddAttributeError(p.AtName("namespace"), "Missing namespace",
				"With endpoint targets a script needs the namespace to run in, e.g. namespace = \"shop-ci\".")
		}
		out = append(out, sr)
	}
	return out, diags
}

// checkScripts fetches every script and checks the configured variables
// against its declarations, so a missing required variable or an unknown
// one fails the plan with the block's path.
func (r *StateApplyResource) checkScripts(ctx context.Context, runs []scriptRun) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, sr := range runs {
		project, name, err := scriptrun.ParseRef(sr.script)
		if err != nil {
			diags.AddAttributeError(sr.attr.AtName("script"), "Invalid script reference", err.Error())
			continue
		}
		sc, err := r.client.GetScript(ctx, project, name)
		if err != nil {
			var d diag.Diagnostics
			addClientError(&d, "Could not read script "+sr.script, err)
			for _, e := range d {
				diags.AddAttributeError(sr.attr.AtName("script"), e.Summary(), e.Detail())
			}
			continue
		}
		if _, err := scriptrun.Resolve(&sc, sr.vars); err != nil {
			diags.AddAttributeError(sr.attr.AtName("variables"), "Invalid script variables",
				err.Error()+". Set the script's variables in this block, e.g. variables = { NAME = \"value\" }.")
		}
	}
	return diags
}

// runScripts runs the scripts in order and stops at the first failure.
func (r *StateApplyResource) runScripts(ctx context.Context, when string, runs []scriptRun) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, sr := range runs {
		cl, err := access.Connect(sr.conn)
		if err != nil {
			diags.AddAttributeError(sr.attr, "Cannot reach the Kubernetes cluster to run "+sr.script, connectHint(err))
			return diags
		}
		timeout := sr.timeout
		if dl, ok := ctx.Deadline(); ok && (timeout == 0 || time.Until(dl) < timeout) {
			timeout = time.Until(dl)
		}
		start := time.Now()
		res, err := scriptrun.Run(ctx, scriptrun.Options{
			Client: cl.Client, Platform: r.client, Namespace: sr.namespace,
			Script: sr.script, Vars: sr.vars, Timeout: timeout,
			Labels: map[string]string{"unikube.dev/phase": when},
			Logger: slog.New(tflogHandler{ctx: ctx}),
		})
		if err != nil {
			diags.AddAttributeError(sr.attr, fmt.Sprintf("%s script %s failed", when, sr.script), scriptFailure(when, err))
			return diags
		}
		tflog.Info(ctx, "script ran", map[string]any{"script": sr.script, "phase": when, "run": res.RunID,
			"duration": time.Since(start).Round(time.Millisecond).String()})
	}
	return diags
}

// scriptFailure explains a failed run: what happened, the trace (what
// broke and where) once, what became of the state, then where to look
// further. Terraform prints it under the "<when> script <ref> failed"
// summary.
func scriptFailure(when string, err error) string {
	var b strings.Builder
	var fe *scriptrun.FailedError
	var ve *scriptrun.ValidationError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(&b, "The script failed in namespace %s: %s.", fe.Namespace, fe.Reason)
		switch {
		case fe.Trace != "":
			fmt.Fprintf(&b, "\n\n%s", strings.TrimRight(fe.Trace, "\n"))
		case fe.LogTail != "":
			fmt.Fprintf(&b, "\n\nLast log lines:\n%s", strings.TrimRight(fe.LogTail, "\n"))
		}
	case errors.As(err, &ve):
		fmt.Fprintf(&b, "%v (nothing was run).", ve)
	default:
		b.WriteString(err.Error())
	}
	if when == "pre" {
		b.WriteString("\n\nThe state was not applied.")
	} else {
		b.WriteString("\n\nThe state was applied; run terraform apply again to retry the script.")
	}
	if fe != nil {
		if fe.Job != "" {
			fmt.Fprintf(&b, "\n\nThe Job is kept for inspection: kubectl -n %s logs job/%s", fe.Namespace, fe.Job)
		}
		if fe.RunID != "" {
			fmt.Fprintf(&b, "\nThe run is recorded on the platform: helm state script logs %s %s", fe.Script, fe.RunID)
		}
	}
	return b.String()
}

// planScripts checks the script blocks against the platform at plan time,
// when their variables are known.
func (r *StateApplyResource) planScripts(ctx context.Context, cfg interface {
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, config stateApplyResourceModel) diag.Diagnostics {
	if !fullyKnown(ctx, config.PreScripts) || !fullyKnown(ctx, config.PostScripts) {
		return nil
	}
	var kube *kubernetesTarget
	if !config.Kubernetes.IsNull() {
		if !fullyKnown(ctx, config.Kubernetes) {
			return nil
		}
		t, diags := decodeKubernetes(ctx, config.Kubernetes, r.kube, statepkg.Ref{})
		if diags.HasError() {
			return diags
		}
		kube = t
	}
	var diags diag.Diagnostics
	for _, name := range []string{"pre_script", "post_script"} {
		runs, d := decodeScripts(ctx, cfg, name, kube, r.kube)
		diags.Append(d...)
		if !d.HasError() {
			diags.Append(r.checkScripts(ctx, runs)...)
		}
	}
	return diags
}
