package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// copyToPrivateRegistry copies a harness image from the cluster's registry
// to the private one under a path no node has pulled before, and returns
// its reference there.
func copyToPrivateRegistry(ctx context.Context, t *testing.T, env *cluster.Env, private *cluster.Registry, image, path string) string {
	t.Helper()
	local := env.Registry(t)
	src, err := name.ParseReference(env.Image(image))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := local.RemoteOptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src, opts...)
	if err != nil {
		t.Fatalf("read %s from the cluster's registry: %v", src, err)
	}
	ref, err := private.Push(ctx, img, path)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestExecutor_AgentJobPullsFromAPrivateRegistryWithTheWorkloadsPullSecret:
// the agent image and the app's image live in a registry whose credentials
// the node does not have (the harness's second registry, basic auth over
// TLS). Without a pull secret the agent Job fails within a minute or two,
// saying it cannot pull and naming the image. A workload whose pod pulls
// with an imagePullSecret gets its data restored: the agent Job pulled the
// agent image only because the executor passed the workload's pull secret
// on.
func TestExecutor_AgentJobPullsFromAPrivateRegistryWithTheWorkloadsPullSecret(t *testing.T) {
	env := cluster.Require(t)
	private := env.PrivateRegistry(t)
	platformURL, cl := exPlatform(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wantFiles, _ := fitSeed(ctx, t, cl, false)

	var b [4]byte
	_, _ = rand.Read(b[:])
	path := "e2e-" + hex.EncodeToString(b[:])
	agent := copyToPrivateRegistry(ctx, t, env, private, "unikube-agent", path+"/unikube-agent:dev")
	app := copyToPrivateRegistry(ctx, t, env, private, "busybox", path+"/busybox:latest")
	apply := func(ns string, timeout time.Duration) error {
		_, err := executor.Apply(ctx, executor.Options{
			Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
			Ref: statepkg.Ref{Project: "fit", State: "seed", Tag: "v1"}, Release: "fit",
			Mappings: []discovery.Mapping{{Component: "files", Workload: "Deployment/web"}},
			Quiesce:  true, AgentImage: agent, Actor: "e2e", Timeout: timeout,
		})
		return err
	}

	t.Run("without a pull secret the agent job cannot pull and says which image", func(t *testing.T) {
		ns := env.Namespace(t)
		// The app's image comes from the cluster's registry, which the node can read.
		clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
		clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, restrictedWeb(env, 999))
		exWaitReady(ctx, t, env, ns, "app=web", 1)
		start := time.Now()
		err := apply(ns, 3*time.Minute)
		took := time.Since(start)
		var pe *jobs.PodError
		if !errors.As(err, &pe) {
			t.Fatalf("apply without a pull secret: want an agent job error, got %v\n%s", err, podDiagnostics(context.Background(), env, ns))
		}
		msg := err.Error()
		if !strings.Contains(msg, "ErrImagePull") && !strings.Contains(msg, "ImagePullBackOff") {
			t.Errorf("error does not say the image cannot be pulled: %v", err)
		}
		if !strings.Contains(msg, agent) {
			t.Errorf("error does not name the image %s: %v", agent, err)
		}
		if took > 2*time.Minute {
			t.Errorf("the failed pull took %s to report, want well under the timeout", took.Round(time.Second))
		}
		t.Logf("failed in %s: %v", took.Round(time.Millisecond), err)
	})

	t.Run("with the workload's pull secret the agent job pulls and restores", func(t *testing.T) {
		ns := env.Namespace(t)
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "private-registry"},
			Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: private.DockerConfigJSON()}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		web := restrictedWeb(env, 999)
		web.Containers[0].Image = app
		web.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "private-registry"}}
		clusterfixture.CreatePVC(ctx, t, env, ns, "uploads")
		clusterfixture.CreateDeployment(ctx, t, env, ns, "web", nil, web)
		exWaitReady(ctx, t, env, ns, "app=web", 1)
		pods := agentPods(ctx, t, env, ns)
		start := time.Now()
		if err := apply(ns, 3*time.Minute); err != nil {
			t.Fatalf("apply with the workload's pull secret: %v\n%s", err, podDiagnostics(context.Background(), env, ns))
		}
		t.Logf("applied in %s", time.Since(start).Round(time.Millisecond))
		if got := exPodFilesSum(ctx, t, env, ns); got != wantFiles {
			t.Errorf("files\n%s\nwant\n%s", got, wantFiles)
		}
		ps := pods()
		if len(ps) == 0 {
			t.Fatal("saw no agent pod")
		}
		for _, p := range ps {
			if len(p.Spec.ImagePullSecrets) != 1 || p.Spec.ImagePullSecrets[0].Name != "private-registry" {
				t.Errorf("agent pod %s imagePullSecrets %v, want the workload's", p.Name, p.Spec.ImagePullSecrets)
			}
			for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
				if c.Image != agent {
					t.Errorf("agent pod %s container %s runs %s, want %s", p.Name, c.Name, c.Image, agent)
				}
			}
		}
	})
}
