package quickstart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestClusterImages_KindClusterGetsThisCheckoutsAgentThroughKindLoad: the
// quickstart's cluster step on a kind cluster without a local registry
// builds this checkout's agent image for the nodes' platform, runs `kind
// load image-archive` on a docker archive of it (a stand-in `kind` on PATH
// records the call), and points Terraform and the plugin at it.
func TestClusterImages_KindClusterGetsThisCheckoutsAgentThroughKindLoad(t *testing.T) {
	root, err := cluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), ".quickstart")
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: kind-dev, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: kind-dev, user: {token: x}}]
contexts: [{name: kind-dev, context: {cluster: kind-dev, user: kind-dev}}]
current-context: kind-dev
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	if err := os.WriteFile(filepath.Join(bin, "kind"), []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := newRun(Config{Root: root, Dir: dir, Out: &out})
	r.setEnv("PATH", bin+string(os.PathListSeparator)+r.getEnv("PATH"))
	r.st.Kubeconfig = kc
	r.kube = &Kube{Kubeconfig: kc, Client: fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dev-control-plane"},
		Spec: corev1.NodeSpec{ProviderID: "kind://docker/dev/dev-control-plane"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{Architecture: "amd64"}}})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.clusterImages(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.HasPrefix(r.st.AgentImage, "localhost/unikube-agent:") {
		t.Fatalf("agent image %q", r.st.AgentImage)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatalf("kind was not run: %v\n%s", err, out.String())
	}
	fields := strings.Fields(string(got))
	if len(fields) != 5 || fields[0] != "load" || fields[1] != "image-archive" || fields[3] != "--name" || fields[4] != "dev" {
		t.Fatalf("kind %s", got)
	}
	tag, err := name.NewTag(r.st.AgentImage)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(fields[2], &tag)
	if err != nil {
		t.Fatalf("the archive kind loads: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Architecture != "amd64" || cf.Config.User == "" || cf.Config.User == "0" {
		t.Fatalf("archive image config %+v %v: want linux/amd64, non-root", cf, err)
	}
	if !strings.Contains(out.String(), "agent Jobs run "+r.st.AgentImage) {
		t.Errorf("output %q", out.String())
	}
}
