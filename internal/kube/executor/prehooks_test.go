package executor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/hooks"
)

// An API server whose namespace has one running pod, web-0 (app=web), in
// which every exec fails: a hook command that ran and exited non-zero.
func oneRunningPodServer(t *testing.T) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/ns/pods" {
			list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
			if r.URL.Query().Get("labelSelector") == "app=web" {
				list.Items = []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns"},
					Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}},
					Status: corev1.PodStatus{Phase: corev1.PodRunning}}}
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(list)
			return
		}
		http.Error(w, "command terminated with exit code 1", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

// A pre hook that ran in a pod may have changed what the pod holds: its
// failure must not claim "nothing was changed" (a refusal), and the apply
// leaves a failed record of it. A hook that ran nowhere is a refusal.
func TestRunPreHooks_AHookThatRanIsNoRefusal(t *testing.T) {
	rc := oneRunningPodServer(t)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ran := hooks.Hook{Name: "pre-0", Selector: "app=web", Command: []string{"sh", "-c", "redis-cli FLUSHALL; exit 1"}, Timeout: 5 * time.Second}
	o := Options{Client: cs, RESTConfig: rc, Namespace: "ns", PreHooks: []hooks.Hook{ran}}
	var at progress
	err = runPreHooks(ctx, o, &at)
	if err == nil {
		t.Fatal("the failing hook did not fail the apply")
	}
	if strings.Contains(err.Error(), Unchanged) || !at.changing {
		t.Errorf("a hook that ran in web-0 failed, but the apply says it changed nothing (changing=%v): %v", at.changing, err)
	}

	nowhere := hooks.Hook{Name: "pre-0", Selector: "app=none", Command: []string{"true"}, Timeout: 5 * time.Second}
	o.PreHooks = []hooks.Hook{nowhere}
	at = progress{}
	err = runPreHooks(ctx, o, &at)
	if err == nil || !strings.Contains(err.Error(), Unchanged) || at.changing {
		t.Errorf("a hook that matched no pod: changing=%v, error %v; want a refusal saying %q", at.changing, err, Unchanged)
	}
}
