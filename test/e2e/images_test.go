package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestDatabaseImages_InitialiseAndServeAsNonRoot starts the harness's
// MariaDB and Redis images as uid 999 and talks to each through exec.
func TestDatabaseImages_InitialiseAndServeAsNonRoot(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	uid := int64(999)
	pw := randomHex(8)
	tests := []struct {
		name  string
		image string
		env   []corev1.EnvVar
		check []string
		want  string
	}{
		{
			name: "mariadb", image: env.Image("mariadb"),
			env: []corev1.EnvVar{{Name: "MARIADB_ROOT_PASSWORD", Value: pw}, {Name: "MARIADB_DATABASE", Value: "app"},
				{Name: "MARIADB_USER", Value: "app"}, {Name: "MARIADB_PASSWORD", Value: pw}},
			// The password comes from the container's env, not the command line.
			check: []string{"sh", "-c", `MYSQL_PWD="$MARIADB_PASSWORD" mariadb -h 127.0.0.1 -u app app -N -e "SELECT CONCAT('ok-', DATABASE())"`},
			want:  "ok-app",
		},
		{
			name: "redis", image: env.Image("redis"),
			check: []string{"redis-cli", "ping"},
			want:  "PONG",
		},
	}
	for _, tc := range tests {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: ptrTo(true)},
				Containers: []corev1.Container{{
					Name: tc.name, Image: tc.image, ImagePullPolicy: corev1.PullIfNotPresent, Env: tc.env,
				}},
			},
		}
		mustCreate(t, "pod "+tc.name, func() error {
			_, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			return err
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last string
			poll(ctx, t, tc.name+" answering", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
				out, stderr, err := execIn(ctx, env, ns, tc.name, tc.name, nil, tc.check...)
				last = strings.TrimSpace(out)
				if err != nil {
					return false, err.Error() + ": " + stderr, nil //nolint:nilerr // the server may still be initialising
				}
				return last == tc.want, last, nil
			})
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
