package quiesce

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// CronJob workloads are suspended instead of scaled.
const CronJob = "CronJob"

// AnnotationSuspend holds a CronJob's spec.suspend from before it was
// quiesced.
const AnnotationSuspend = "unikube.dev/quiesced-suspend"

// suspendCron records the CronJob's suspend flag (unless an interrupted
// apply already did) and suspends it.
func suspendCron(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	cj, err := cs.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get CronJob/%s: %w", name, err)
	}
	if _, ok := cj.Annotations[AnnotationSuspend]; !ok {
		was := cj.Spec.Suspend != nil && *cj.Spec.Suspend
		if err := patchCron(ctx, cs, ns, name, map[string]any{AnnotationSuspend: strconv.FormatBool(was)}, nil); err != nil {
			return err
		}
	}
	t := true
	return patchCron(ctx, cs, ns, name, nil, &t)
}

// resumeCron puts back the recorded suspend flag and drops the annotation;
// a CronJob without the annotation is left alone.
func resumeCron(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	cj, err := cs.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get CronJob/%s: %w", name, err)
	}
	v, ok := cj.Annotations[AnnotationSuspend]
	if !ok {
		return nil
	}
	was, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("CronJob/%s: annotation %s=%q is not a boolean; fix or remove it", name, AnnotationSuspend, v)
	}
	return patchCron(ctx, cs, ns, name, map[string]any{AnnotationSuspend: nil}, &was)
}

func patchCron(ctx context.Context, cs kubernetes.Interface, ns, name string, ann map[string]any, suspend *bool) error {
	body := map[string]any{}
	if ann != nil {
		body["metadata"] = map[string]any{"annotations": ann}
	}
	if suspend != nil {
		body["spec"] = map[string]any{"suspend": *suspend}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if _, err := cs.BatchV1().CronJobs(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch CronJob/%s: %w", name, err)
	}
	return nil
}
