package executor

// The `script` component kind: the escape hatch for services without a
// built-in driver (a search engine's bulk import, files of a static site,
// a key-value import through a client the image has). Its restore runs a
// cluster script (internal/scriptrun) with the component's data at
// /unikube/data: an init container running `unikube-agent fetch` unpacks
// the component there (a tar stream with a file index becomes files; any
// other stream is one file named after the component).
//
// Which script, with which variables:
//   - the component's meta `script` = "project/name" (set when the version
//     is made), and meta `var.NAME` = value for each variable;
//   - the mapping's options override both: `script=project/name`,
//     `var.NAME=value`;
//   - the mapping's PVC (or option `pvc`) is mounted read-write at
//     /unikube/target ($UNIKUBE_TARGET) for scripts that write files;
//   - the Job is placed like the workload the script serves (the
//     mapping's workload or selector, else the pod mounting the PVC): its
//     pull secrets, nodes, tolerations and priority; its containers get the
//     mapping's resources, jobs.DefaultResources for what it leaves out.
//
// The script also gets UNIKUBE_COMPONENT, UNIKUBE_STATE, UNIKUBE_VERSION
// (the digest) and UNIKUBE_DATA. Script components are checked (script
// exists, variables valid) before anything changes and run after the
// other components are restored, while the workloads are still quiesced.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Meta keys and mapping options of script components.
const (
	ScriptMetaKey   = "script"
	ScriptVarPrefix = "var."
	ScriptPVCOption = "pvc"
)

// scriptTarget is a resolved script component.
type scriptTarget struct {
	comp   statepkg.Component
	script client.Script
	vars   map[string]string
	pvc    string
	node   string
	// fit places the script's pod like the workload it serves (the
	// mapping's workload, or the pod mounting its PVC).
	fit       jobs.PodFit
	resources *corev1.ResourceRequirements
}

// scriptTargets takes the script components out of ms and checks each:
// the script exists and accepts the variables.
func scriptTargets(ctx context.Context, o Options, m *statepkg.Manifest, ms []discovery.Mapping) ([]scriptTarget, []discovery.Mapping, error) {
	byName := map[string]statepkg.Component{}
	for _, c := range m.Components {
		byName[c.Name] = c
	}
	var out []scriptTarget
	var rest []discovery.Mapping
	for _, mp := range ms {
		if mp.Kind != statepkg.KindScript {
			rest = append(rest, mp)
			continue
		}
		t, err := scriptTargetOf(ctx, o, byName[mp.Component], mp)
		if err != nil {
			return nil, nil, fmt.Errorf("component %q (nothing was changed): %w", mp.Component, err)
		}
		out = append(out, t)
	}
	return out, rest, nil
}

func scriptTargetOf(ctx context.Context, o Options, c statepkg.Component, mp discovery.Mapping) (scriptTarget, error) {
	t := scriptTarget{comp: c, vars: map[string]string{}, pvc: mp.PVC, resources: mp.Resources}
	ref := c.Meta[ScriptMetaKey]
	for k, v := range c.Meta {
		if name, ok := strings.CutPrefix(k, ScriptVarPrefix); ok {
			t.vars[name] = v
		}
	}
	for k, v := range mp.Options {
		switch {
		case k == ScriptMetaKey:
			ref = v
		case k == ScriptPVCOption:
			t.pvc = v
		case strings.HasPrefix(k, ScriptVarPrefix):
			t.vars[strings.TrimPrefix(k, ScriptVarPrefix)] = v
		default:
			return t, fmt.Errorf("option %q: script components take script=PROJECT/NAME, var.NAME=VALUE and pvc=NAME", k)
		}
	}
	if ref == "" {
		return t, errors.New("no script: set the component's meta \"script\" or the mapping option script=PROJECT/NAME")
	}
	project, name, err := scriptrun.ParseRef(ref)
	if err != nil {
		return t, err
	}
	sc, err := o.Platform.GetScript(ctx, project, name)
	if err != nil {
		return t, fmt.Errorf("script %s: %w", ref, err)
	}
	if _, err := scriptrun.Resolve(&sc, t.vars); err != nil {
		return t, err
	}
	t.script = sc
	if mp.Workload != "" || mp.Selector != "" {
		if t.fit, err = discovery.FitOf(ctx, o.Client, o.Namespace, mp); err != nil {
			return t, err
		}
	}
	if t.pvc != "" {
		if _, err := o.Client.CoreV1().PersistentVolumeClaims(o.Namespace).Get(ctx, t.pvc, metav1.GetOptions{}); err != nil {
			return t, fmt.Errorf("PVC %s: %w", t.pvc, err)
		}
		// A ReadWriteOnce volume is attached to one node: run there.
		if pods, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range pods.Items {
				for _, v := range p.Spec.Volumes {
					if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == t.pvc && p.Spec.NodeName != "" {
						t.node = p.Spec.NodeName
						if mp.Workload == "" && mp.Selector == "" {
							// The running pod's spec has its account's pull
							// secrets already (admission added them).
							t.fit = jobs.FitFrom(p.Spec)
						}
					}
				}
			}
		}
	}
	return t, nil
}

// restoreScripts runs the script components one after another, unless the
// restore already failed, and adds them to the record.
func restoreScripts(ctx context.Context, o Options, digest, token string, ts []scriptTarget, rec *records.Record, prev error, log *slog.Logger) error {
	if prev != nil || len(ts) == 0 {
		return prev
	}
	for _, t := range ts {
		rc := records.Component{Name: t.comp.Name, Kind: string(statepkg.KindScript), Action: "replace", Strategy: "script " + t.script.Project + "/" + t.script.Name}
		start := time.Now()
		_, err := scriptrun.Run(ctx, scriptrun.Options{
			Client: o.Client, Platform: o.Platform, Namespace: o.Namespace, Fetched: &t.script, Vars: t.vars,
			Timeout: o.Timeout, TargetPVC: t.pvc, NodeName: t.node, Fit: t.fit, Resources: t.resources,
			Target: fmt.Sprintf("component %s of %s@%s in %s", t.comp.Name, o.Ref.StateName(), digest, o.Namespace),
			Data: &scriptrun.Data{AgentImage: o.AgentImage, ClientVersion: o.ClientVersion, PlatformURL: o.PlatformURL, Token: token,
				State: o.Ref.StateName(), Digest: digest, Component: t.comp.Name, CAConfigMap: o.CAConfigMap},
			Env:    map[string]string{"UNIKUBE_COMPONENT": t.comp.Name, "UNIKUBE_STATE": o.Ref.StateName(), "UNIKUBE_VERSION": digest},
			Labels: map[string]string{"unikube.dev/release": o.Release, LabelMode: ModeRestore, "unikube.dev/component": t.comp.Name},
			Logger: log,
		})
		rc.Duration = time.Since(start)
		if err != nil {
			rc.Error = err.Error()
			var fe *scriptrun.FailedError
			if errors.As(err, &fe) && fe.LogTail != "" {
				rc.LogTail = strings.Split(strings.TrimRight(fe.LogTail, "\n"), "\n")
				if len(rc.LogTail) > 50 {
					rc.LogTail = rc.LogTail[len(rc.LogTail)-50:]
				}
			}
			rec.Components = append(rec.Components, rc)
			return fmt.Errorf("component %s: %w", t.comp.Name, err)
		}
		rec.Components = append(rec.Components, rc)
	}
	return nil
}
