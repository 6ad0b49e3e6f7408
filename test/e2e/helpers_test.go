package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// execIn runs a command in a container through the API server (what
// `kubectl exec` does), with optional stdin.
func execIn(ctx context.Context, env *cluster.Env, ns, pod, container string, stdin io.Reader, cmd ...string) (string, string, error) {
	req := env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container, Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(env.RESTConfig, "GET", req.URL().String())
	if err != nil {
		return "", "", fmt.Errorf("websocket executor: %w", err)
	}
	sp, err := remotecommand.NewSPDYExecutor(env.RESTConfig, "POST", req.URL())
	if err != nil {
		return "", "", fmt.Errorf("spdy executor: %w", err)
	}
	if os.Getenv("E2E_EXEC_SPDY") == "1" {
		ws = sp // only SPDY, the protocol before Kubernetes 1.30
	}
	// kubectl's order: WebSocket first, SPDY when the server cannot upgrade.
	ex, err := remotecommand.NewFallbackExecutor(ws, sp, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", fmt.Errorf("exec: %w", err)
	}
	var out, errb bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), err
}

// portForward forwards a free local port to a pod port (what `kubectl
// port-forward` does) until the test ends; it returns the local port.
func portForward(t *testing.T, env *cluster.Env, ns, pod string, port int) uint16 {
	t.Helper()
	rt, upgrader, err := spdy.RoundTripperFor(env.RESTConfig)
	if err != nil {
		t.Fatalf("port-forward transport: %v", err)
	}
	url := env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", url)
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		t.Fatalf("port-forward: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() { close(stop); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward ended: %v %s", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward not ready after 30s: %s", errOut.String())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward ports: %v %v", ports, err)
	}
	return ports[0].Local
}

// poll calls cond until it reports done, failing the test with the last
// reason on timeout.
func poll(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	var reason string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, r, err := cond(ctx)
		reason = r
		return ok, err
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, reason)
	}
}

// podDiagnostics summarises the pods of a namespace for failure messages.
func podDiagnostics(ctx context.Context, env *cluster.Env, ns string) string {
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metaListAll)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s", p.Name, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				fmt.Fprintf(&b, " [%s waiting: %s %s]", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
			}
			if cs.State.Terminated != nil {
				fmt.Fprintf(&b, " [%s terminated: %s exit %d]", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
