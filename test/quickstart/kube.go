package quickstart

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// Kube is a connection to the target cluster.
type Kube struct {
	Kubeconfig string
	REST       *rest.Config
	Client     kubernetes.Interface
}

// Connect loads a kubeconfig (its current context) and checks that the API
// server answers within a few seconds.
func Connect(ctx context.Context, kubeconfig string) (*Kube, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	rc.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", kubeconfig, err)
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster of %s does not answer: %w", kubeconfig, err)
	}
	rc.Timeout = 0 // exec streams last longer than one request
	if cs, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, err
	}
	return &Kube{Kubeconfig: kubeconfig, REST: rc, Client: cs}, nil
}

// NodeIP returns the InternalIP of the first node: on the local harness the
// address pods reach the host on.
func (k *Kube) NodeIP(ctx context.Context) (string, error) {
	nodes, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				return a.Address, nil
			}
		}
	}
	return "", fmt.Errorf("no node has an InternalIP")
}

// Pod returns the name of a running, ready pod matching selector.
func (k *Kube) Pod(ctx context.Context, ns, selector string) (string, error) {
	pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", fmt.Errorf("list pods %s: %w", selector, err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no ready pod in %s matches %s", ns, selector)
}

// WaitPod waits until a pod matching selector is ready.
func (k *Kube) WaitPod(ctx context.Context, ns, selector string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		name, err := k.Pod(ctx, ns, selector)
		if err == nil {
			return name, nil
		}
		if time.Now().After(deadline) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Exec runs cmd in a container of the first ready pod matching selector and
// returns its stdout.
func (k *Kube) Exec(ctx context.Context, ns, selector, container string, cmd ...string) (string, error) {
	pod, err := k.WaitPod(ctx, ns, selector, 2*time.Minute)
	if err != nil {
		return "", err
	}
	req := k.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(k.REST, "GET", req.URL().String())
	if err != nil {
		return "", fmt.Errorf("exec in %s: %w", pod, err)
	}
	sp, err := remotecommand.NewSPDYExecutor(k.REST, "POST", req.URL())
	if err != nil {
		return "", fmt.Errorf("exec in %s: %w", pod, err)
	}
	// kubectl's order: WebSocket first, SPDY when the server cannot upgrade.
	ex, err := remotecommand.NewFallbackExecutor(ws, sp, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", fmt.Errorf("exec in %s: %w", pod, err)
	}
	var out, errb bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb}); err != nil {
		return out.String(), fmt.Errorf("%s in %s: %w: %s", strings.Join(cmd, " "), pod, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// DeleteNamespace deletes ns and waits until it is gone (its PVCs with it).
func (k *Kube) DeleteNamespace(ctx context.Context, ns string, timeout time.Duration) error {
	err := k.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		_, err := k.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still terminating after %s", ns, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
