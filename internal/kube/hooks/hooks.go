// Package hooks runs pre/post commands in a container of the app's pods
// (e.g. a CHECKPOINT before a database is dumped, flushing a cache after a
// restore), through the API server's exec, with a timeout and an on-error
// policy. Hooks carry no bulk data (see LOCAL-CLUSTER.md #10): only a
// command and its (bounded) output.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// What a failed hook does to the apply.
const (
	OnErrorFail     = "fail"
	OnErrorContinue = "continue"
)

// Hook is one command in one container of the pods a selector matches.
type Hook struct {
	Name      string
	Selector  string // label selector of the pods (all running ones get the command)
	Container string // default: the pod's first container
	Command   []string
	Timeout   time.Duration // default 1m
	OnError   string        // fail (default) or continue
}

// Result of a hook on one pod.
type Result struct {
	Hook, Pod      string
	Stdout, Stderr string
	Err            error
}

// maxOutput bounds what a hook's output keeps.
const maxOutput = 16 << 10

type capped struct{ bytes.Buffer }

func (c *capped) Write(b []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

// Run runs h in every running pod its selector matches in ns. It returns
// the per-pod results and, when OnError is fail, an error naming the
// first pod where the command failed.
func Run(ctx context.Context, rc *rest.Config, cs kubernetes.Interface, ns string, h Hook) ([]Result, error) {
	if len(h.Command) == 0 {
		return nil, fmt.Errorf("hook %s: no command", h.Name)
	}
	if h.OnError == "" {
		h.OnError = OnErrorFail
	}
	if h.OnError != OnErrorFail && h.OnError != OnErrorContinue {
		return nil, fmt.Errorf("hook %s: on_error %q: want fail or continue", h.Name, h.OnError)
	}
	if h.Timeout <= 0 {
		h.Timeout = time.Minute
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: h.Selector})
	if err != nil {
		return nil, fmt.Errorf("hook %s: list pods %q: %w", h.Name, h.Selector, err)
	}
	var out []Result
	var errs []error
	ran := 0
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		ran++
		r := execOne(ctx, rc, cs, ns, p, h)
		out = append(out, r)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("hook %s in pod %s: %w (stderr: %s)", h.Name, p.Name, r.Err, r.Stderr))
		}
	}
	if ran == 0 {
		errs = append(errs, fmt.Errorf("hook %s: no running pod matches %q", h.Name, h.Selector))
	}
	if len(errs) > 0 && h.OnError == OnErrorFail {
		return out, errors.Join(errs...)
	}
	return out, nil
}

func execOne(ctx context.Context, rc *rest.Config, cs kubernetes.Interface, ns string, p corev1.Pod, h Hook) Result {
	r := Result{Hook: h.Name, Pod: p.Name}
	container := h.Container
	if container == "" && len(p.Spec.Containers) > 0 {
		container = p.Spec.Containers[0].Name
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(p.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: h.Command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(rc, "GET", req.URL().String())
	if err != nil {
		r.Err = fmt.Errorf("exec: %w", err)
		return r
	}
	sp, err := remotecommand.NewSPDYExecutor(rc, "POST", req.URL())
	if err != nil {
		r.Err = fmt.Errorf("exec: %w", err)
		return r
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, sp, func(error) bool { return true })
	if err != nil {
		r.Err = fmt.Errorf("exec: %w", err)
		return r
	}
	var stdout, stderr capped
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("timed out after %s: %w", h.Timeout, err)
	}
	r.Err = err
	return r
}
