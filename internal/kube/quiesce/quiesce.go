// Package quiesce stops the workloads that use a component's data before
// it is replaced and starts them again after. The original replica count
// is written into an annotation on the workload BEFORE it is scaled down,
// so an interrupted apply can be recovered by the next one (or Recover).
package quiesce

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// AnnotationReplicas holds a workload's replica count from before it was
// quiesced; its presence means "scaled down by unikube-state".
const AnnotationReplicas = "unikube.dev/quiesced-replicas"

// Kinds of workloads.
const (
	StatefulSet = "StatefulSet"
	Deployment  = "Deployment"
)

// Workload names one scalable workload.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// Options tune waiting.
type Options struct {
	Timeout time.Duration // per wait; default 5m
	Poll    time.Duration // default 500ms
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	return o
}

type scaled struct {
	replicas int32
	selector *metav1.LabelSelector
	ann      map[string]string
}

func get(ctx context.Context, cs kubernetes.Interface, ns string, w Workload) (scaled, error) {
	switch w.Kind {
	case StatefulSet:
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return scaled{}, fmt.Errorf("get %s: %w", w, err)
		}
		return scaled{replicas: deref(s.Spec.Replicas), selector: s.Spec.Selector, ann: s.Annotations}, nil
	case Deployment:
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return scaled{}, fmt.Errorf("get %s: %w", w, err)
		}
		return scaled{replicas: deref(d.Spec.Replicas), selector: d.Spec.Selector, ann: d.Annotations}, nil
	}
	return scaled{}, fmt.Errorf("quiesce: unsupported workload kind %q (want StatefulSet or Deployment)", w.Kind)
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// patch applies a merge patch of annotations and replicas to w.
func patch(ctx context.Context, cs kubernetes.Interface, ns string, w Workload, ann map[string]any, replicas *int32) error {
	body := map[string]any{}
	if ann != nil {
		body["metadata"] = map[string]any{"annotations": ann}
	}
	if replicas != nil {
		body["spec"] = map[string]any{"replicas": *replicas}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	switch w.Kind {
	case StatefulSet:
		_, err = cs.AppsV1().StatefulSets(ns).Patch(ctx, w.Name, types.MergePatchType, b, metav1.PatchOptions{})
	case Deployment:
		_, err = cs.AppsV1().Deployments(ns).Patch(ctx, w.Name, types.MergePatchType, b, metav1.PatchOptions{})
	default:
		err = fmt.Errorf("unsupported workload kind %q", w.Kind)
	}
	if err != nil {
		return fmt.Errorf("patch %s: %w", w, err)
	}
	return nil
}

// Down records each workload's replicas in an annotation, scales it to 0
// and waits until its pods are gone; CronJobs are suspended instead. A workload already carrying the
// annotation (an interrupted earlier apply) keeps its recorded count.
func Down(ctx context.Context, cs kubernetes.Interface, ns string, ws []Workload, o Options) error {
	o = o.withDefaults()
	var scaledDown []Workload
	for _, w := range ws {
		if w.Kind == CronJob {
			if err := suspendCron(ctx, cs, ns, w.Name); err != nil {
				return err
			}
			continue
		}
		scaledDown = append(scaledDown, w)
		s, err := get(ctx, cs, ns, w)
		if err != nil {
			return err
		}
		if _, ok := s.ann[AnnotationReplicas]; !ok {
			// Record first: if we die after scaling, the count is not lost.
			if err := patch(ctx, cs, ns, w, map[string]any{AnnotationReplicas: strconv.Itoa(int(s.replicas))}, nil); err != nil {
				return err
			}
		}
		zero := int32(0)
		if err := patch(ctx, cs, ns, w, nil, &zero); err != nil {
			return err
		}
	}
	for _, w := range scaledDown {
		s, err := get(ctx, cs, ns, w)
		if err != nil {
			return err
		}
		sel, err := metav1.LabelSelectorAsSelector(s.selector)
		if err != nil {
			return fmt.Errorf("%s selector: %w", w, err)
		}
		if err := waitPods(ctx, cs, ns, sel, o, func(n, _ int) bool { return n == 0 }); err != nil {
			return fmt.Errorf("waiting for the pods of %s to stop: %w", w, err)
		}
	}
	return nil
}

// Up scales each workload back to its recorded replicas, removes the
// annotation and waits until that many pods are ready. Workloads without
// the annotation are left alone.
func Up(ctx context.Context, cs kubernetes.Interface, ns string, ws []Workload, o Options) error {
	o = o.withDefaults()
	type want struct {
		w   Workload
		n   int
		sel labels.Selector
	}
	var waits []want
	for _, w := range ws {
		if w.Kind == CronJob {
			if err := resumeCron(ctx, cs, ns, w.Name); err != nil {
				return err
			}
			continue
		}
		s, err := get(ctx, cs, ns, w)
		if err != nil {
			return err
		}
		v, ok := s.ann[AnnotationReplicas]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: annotation %s=%q is not a replica count; fix or remove it", w, AnnotationReplicas, v)
		}
		r := int32(n)
		// One patch: the annotation goes exactly when the replicas come back.
		if err := patch(ctx, cs, ns, w, map[string]any{AnnotationReplicas: nil}, &r); err != nil {
			return err
		}
		sel, err := metav1.LabelSelectorAsSelector(s.selector)
		if err != nil {
			return fmt.Errorf("%s selector: %w", w, err)
		}
		waits = append(waits, want{w, n, sel})
	}
	for _, x := range waits {
		if err := waitPods(ctx, cs, ns, x.sel, o, func(_, ready int) bool { return ready >= x.n }); err != nil {
			return fmt.Errorf("waiting for %s to be ready with %d replicas: %w", x.w, x.n, err)
		}
	}
	return nil
}

// Recover finds every StatefulSet and Deployment in ns left quiesced by an
// interrupted apply and scales it back; it returns what it recovered.
func Recover(ctx context.Context, cs kubernetes.Interface, ns string, o Options) ([]Workload, error) {
	var ws []Workload
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		if _, ok := s.Annotations[AnnotationReplicas]; ok {
			ws = append(ws, Workload{StatefulSet, s.Name})
		}
	}
	ds, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range ds.Items {
		if _, ok := d.Annotations[AnnotationReplicas]; ok {
			ws = append(ws, Workload{Deployment, d.Name})
		}
	}
	cjs, err := cs.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list cronjobs: %w", err)
	}
	for _, c := range cjs.Items {
		if _, ok := c.Annotations[AnnotationSuspend]; ok {
			ws = append(ws, Workload{CronJob, c.Name})
		}
	}
	return ws, Up(ctx, cs, ns, ws, o)
}

// waitPods polls the pods matching sel until done(total, ready) holds.
func waitPods(ctx context.Context, cs kubernetes.Interface, ns string, sel labels.Selector, o Options, done func(total, ready int) bool) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, o.Poll, o.Timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			lastErr = err
			return false, nil //nolint:nilerr // transient; retry until the timeout, then report it
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		return done(len(pods.Items), ready), nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("%w (last API error: %v)", err, lastErr)
	}
	return err
}
