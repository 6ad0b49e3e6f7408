package e2e

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestExec_LargeStdinArrivesWhole documents the harness's known limitation
// (test/cluster/README.md): on the local cluster (containerd 1.6 CRI
// streaming) exec stdin beyond some tens of KiB is cut short. It runs only
// with E2E_KNOWN_ISSUES=1, so whoever tries a fix can check it.
func TestExec_LargeStdinArrivesWhole(t *testing.T) {
	if os.Getenv("E2E_KNOWN_ISSUES") != "1" {
		t.Skip("known limitation of the local harness; set E2E_KNOWN_ISSUES=1 to run")
	}
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sink"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "sh", Image: env.Image("busybox"), ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
	mustCreate(t, "pod", func() error {
		_, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	poll(ctx, t, "pod running", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "sink", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil //nolint:nilerr // API errors while polling are retried
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase), nil
	})
	for _, tc := range []struct {
		size int
		cmd  []string
	}{
		{16 << 10, []string{"wc", "-c"}},
		{10 << 20, []string{"wc", "-c"}},
		// A consumer that starts late, so the stream has to buffer (like a
		// restore tool that opens its input only after connecting).
		{10 << 20, []string{"sh", "-c", "sleep 3; wc -c"}},
		{10 << 20, []string{"sh", "-c", "while read -r l; do echo \"$l\"; done | wc -c"}},
	} {
		size := tc.size
		data := bytes.Repeat([]byte("0123456789abcde\n"), size/16)
		out, stderr, err := execIn(ctx, env, ns, "sink", "sh", bytes.NewReader(data), tc.cmd...)
		if err != nil {
			t.Errorf("exec with %d bytes of stdin: %v %s", size, err, stderr)
			continue
		}
		if got := strings.TrimSpace(out); got != strconv.Itoa(size) {
			t.Errorf("exec stdin: sent %d bytes, the container read %s", size, got)
		}
	}
}
