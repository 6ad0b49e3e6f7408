package imageload

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name, providerID, arch string, labels map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:   corev1.NodeSpec{ProviderID: providerID},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{Architecture: arch}}}
}

// TestDetect_KindK3dMinikubeByTheirNodesOrContext: each tool's own marks
// on its nodes name the cluster, node names with the context come next,
// then the context alone; any other cluster is none of them.
func TestDetect_KindK3dMinikubeByTheirNodesOrContext(t *testing.T) {
	tests := []struct {
		name    string
		context string
		nodes   []corev1.Node
		want    *Cluster // Tool, Name, Arch only
	}{
		{"kind provider ID", "my-context", []corev1.Node{node("dev-control-plane", "kind://docker/dev/dev-control-plane", "amd64", nil)}, &Cluster{Tool: Kind, Name: "dev", Arch: "amd64"}},
		{"kind on podman", "", []corev1.Node{node("x-worker", "kind://podman/x/x-worker", "arm64", nil)}, &Cluster{Tool: Kind, Name: "x", Arch: "arm64"}},
		{"kind node name and context", "kind-kind", []corev1.Node{node("kind-control-plane", "", "amd64", nil)}, &Cluster{Tool: Kind, Name: "kind", Arch: "amd64"}},
		{"k3d node name", "", []corev1.Node{node("k3d-shop-server-0", "", "arm64", nil)}, &Cluster{Tool: K3d, Name: "shop", Arch: "arm64"}},
		{"k3d agent via k3s provider ID", "", []corev1.Node{node("whatever", "k3s://k3d-my-cluster-agent-1", "amd64", nil)}, &Cluster{Tool: K3d, Name: "my-cluster", Arch: "amd64"}},
		{"minikube label", "ctx", []corev1.Node{node("minikube", "", "amd64", map[string]string{"minikube.k8s.io/name": "minikube"})}, &Cluster{Tool: Minikube, Name: "minikube", Arch: "amd64"}},
		{"minikube profile label", "", []corev1.Node{node("dev", "", "amd64", map[string]string{"minikube.k8s.io/name": "dev"})}, &Cluster{Tool: Minikube, Name: "dev", Arch: "amd64"}},
		{"minikube node name and context", "minikube", []corev1.Node{node("minikube", "", "amd64", nil)}, &Cluster{Tool: Minikube, Name: "minikube", Arch: "amd64"}},
		{"kind context only", "kind-ci", nil, &Cluster{Tool: Kind, Name: "ci", Arch: "amd64"}},
		{"k3d context only", "k3d-ci", nil, &Cluster{Tool: K3d, Name: "ci", Arch: "amd64"}},
		{"kubeadm control plane is not kind", "admin@prod", []corev1.Node{node("prod-control-plane", "", "amd64", nil)}, nil},
		{"EKS", "arn:aws:eks:eu-1:1:cluster/prod", []corev1.Node{node("ip-10-0-0-1", "aws:///eu-1a/i-0abc", "amd64", nil)}, nil},
		{"the project's own cluster", "unikube", []corev1.Node{node("unikube", "", "amd64", nil)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Detect(tt.context, tt.nodes)
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("Detect = %+v, want %+v", got, tt.want)
			}
			if got != nil && (got.Tool != tt.want.Tool || got.Name != tt.want.Name || got.Arch != tt.want.Arch || got.By == "") {
				t.Fatalf("Detect = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestMakePlan_TheCommandEachToolRuns: without a registry each tool loads
// the archive with its own command, naming the cluster.
func TestMakePlan_TheCommandEachToolRuns(t *testing.T) {
	imgs := []Image{{Name: "unikube-agent", Tag: "v1.2.0"}}
	want := map[Tool]string{
		Kind:     "kind load image-archive /q/unikube-agent-v1.2.0-linux-arm64.tar --name dev",
		K3d:      "k3d image import /q/unikube-agent-v1.2.0-linux-arm64.tar --cluster dev",
		Minikube: "minikube image load /q/unikube-agent-v1.2.0-linux-arm64.tar --profile dev",
	}
	for tool, cmd := range want {
		p, err := MakePlan(Cluster{Tool: tool, Name: "dev", Arch: "arm64"}, imgs, "/q", func(n string) bool { return n == string(tool) })
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Commands) != 1 || p.Commands[0].String() != cmd || p.PushTo != "" {
			t.Errorf("%s: %v, want %q", tool, p.Commands, cmd)
		}
		if p.Refs["unikube-agent"] != "localhost/unikube-agent:v1.2.0" {
			t.Errorf("%s: pods use %q", tool, p.Refs["unikube-agent"])
		}
	}
}

// TestMakePlan_ARegistryTheClusterDocumentsWins: with the KEP-1755
// ConfigMap the images are pushed to its host and pods pull them by the
// name the container runtime knows the registry by.
func TestMakePlan_ARegistryTheClusterDocumentsWins(t *testing.T) {
	reg, err := ParseRegistry("host: \"localhost:5001\"\nhostFromContainerRuntime: \"kind-registry:5000\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n")
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(Cluster{Tool: Kind, Name: "kind", Arch: "amd64", Registry: reg}, []Image{{Name: "unikube-agent", Tag: "v1"}}, "/q", func(string) bool { return false })
	if err != nil || p.PushTo != "localhost:5001" || len(p.Commands) != 0 || p.Refs["unikube-agent"] != "kind-registry:5000/unikube-agent:v1" {
		t.Fatalf("plan %+v, %v", p, err)
	}
	if _, err := ParseRegistry("help: no host\n"); err == nil {
		t.Fatal("a registry without a host was accepted")
	}
}

// TestMakePlan_WithoutTheToolSaysExactlyWhatToRun: no registry and no
// tool on PATH: the error names the cluster, why, and the command lines.
func TestMakePlan_WithoutTheToolSaysExactlyWhatToRun(t *testing.T) {
	_, err := MakePlan(Cluster{Tool: K3d, Name: "shop", Arch: "amd64", By: "node k3d-shop-server-0"}, []Image{{Name: "unikube-agent", Tag: "v1"}}, "/q", func(string) bool { return false })
	var nw *NoWayError
	if !errors.As(err, &nw) {
		t.Fatalf("err %v, want a *NoWayError", err)
	}
	for _, want := range []string{`k3d cluster "shop"`, "kube-public/local-registry-hosting", "`k3d` is not on PATH", "k3d image import /q/unikube-agent-v1-linux-amd64.tar --cluster shop", "make push-images REGISTRY=", "QUICKSTART_AGENT_IMAGE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

// twoPlatforms is a small linux/amd64 + linux/arm64 index.
func twoPlatforms(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return idx
}

func sources(idx v1.ImageIndex) func(context.Context, string) ([]Source, error) {
	return func(context.Context, string) ([]Source, error) {
		return []Source{{Image: Image{Name: "unikube-agent", Tag: "v1"}, Index: idx}}, nil
	}
}

// TestEnsure_PushesToTheRegistryTheClusterDocuments: a kind cluster whose
// kube-public/local-registry-hosting names a (real, in-process) registry
// gets the whole index pushed there; nothing is run.
func TestEnsure_PushesToTheRegistryTheClusterDocuments(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kind-control-plane"}, Spec: corev1.NodeSpec{ProviderID: "kind://docker/kind/kind-control-plane"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RegistryConfigMap, Namespace: RegistryNamespace},
			Data: map[string]string{RegistryKey: "host: \"" + host + "\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"}},
	)
	idx := twoPlatforms(t)
	var out strings.Builder
	res, err := Ensure(context.Background(), Options{Client: cs, Context: "kind-kind", Names: []Image{{Name: "unikube-agent", Tag: "v1"}}, Images: sources(idx),
		ArchiveDir: t.TempDir(), Out: &out,
		Run: func(_ context.Context, n string, a ...string) error { t.Fatalf("ran %s %v", n, a); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/unikube-agent:v1"; res.Refs["unikube-agent"] != want || res.Cluster.Tool != Kind {
		t.Fatalf("result %+v, want pods to pull %s", res, want)
	}
	ref, err := name.ParseReference(host + "/unikube-agent:v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	wd, _ := idx.Digest()
	if gd != wd {
		t.Fatalf("registry holds %s, pushed %s", gd, wd)
	}
	if !strings.Contains(out.String(), "documents a local registry at "+host) {
		t.Errorf("output %q", out.String())
	}
}

// TestEnsure_LoadsAnArchiveOfTheNodesPlatformWithTheTool: a minikube
// cluster on arm64 without a registry: the arm64 image is saved as a
// docker archive tagged localhost/unikube-agent:v1 and `minikube image
// load` runs on it.
func TestEnsure_LoadsAnArchiveOfTheNodesPlatformWithTheTool(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "minikube", Labels: map[string]string{"minikube.k8s.io/name": "minikube"}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{Architecture: "arm64"}}})
	idx := twoPlatforms(t)
	dir := t.TempDir()
	var ran []string
	res, err := Ensure(context.Background(), Options{Client: cs, Context: "minikube", Names: []Image{{Name: "unikube-agent", Tag: "v1"}}, Images: sources(idx),
		ArchiveDir: dir, LookPath: func(n string) (string, bool) { return "/usr/local/bin/" + n, n == "minikube" },
		Run: func(_ context.Context, n string, a ...string) error {
			ran = append(ran, Command{Name: n, Args: a}.String())
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "unikube-agent-v1-linux-arm64.tar")
	if len(ran) != 1 || ran[0] != "minikube image load "+archive+" --profile minikube" || res.Refs["unikube-agent"] != "localhost/unikube-agent:v1" {
		t.Fatalf("ran %q, refs %v", ran, res.Refs)
	}
	tag, err := name.NewTag("localhost/unikube-agent:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := platformImage(idx, "arm64")
	wd, _ := want.Digest()
	gd, _ := img.Digest()
	if gd != wd {
		t.Fatalf("archive holds %s (%s/%s), want the arm64 image %s", gd, cf.OS, cf.Architecture, wd)
	}
}

// TestEnsure_NoToolLeavesTheArchivesAndSaysWhatToRun: kind without a
// registry or `kind` on PATH: the archives are written and the error
// gives the command that loads them.
func TestEnsure_NoToolLeavesTheArchivesAndSaysWhatToRun(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dev-control-plane"}, Spec: corev1.NodeSpec{ProviderID: "kind://docker/dev/dev-control-plane"}})
	dir := t.TempDir()
	_, err := Ensure(context.Background(), Options{Client: cs, Names: []Image{{Name: "unikube-agent", Tag: "v1"}}, Images: sources(twoPlatforms(t)),
		ArchiveDir: dir, LookPath: func(string) (string, bool) { return "", false }})
	archive := filepath.Join(dir, "unikube-agent-v1-linux-amd64.tar")
	if err == nil || !strings.Contains(err.Error(), "kind load image-archive "+archive+" --name dev") {
		t.Fatalf("err %v", err)
	}
	if _, serr := os.Stat(archive); serr != nil {
		t.Fatalf("the archive the error names is not there: %v", serr)
	}
}

// TestEnsure_OtherClustersAreLeftAlone: EKS, GKE, the project's own
// cluster: nothing to do, nothing built.
func TestEnsure_OtherClustersAreLeftAlone(t *testing.T) {
	objs := []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gke-pool-1-abc"}, Spec: corev1.NodeSpec{ProviderID: "gce://p/europe-west1-b/gke-pool-1-abc"}}}
	res, err := Ensure(context.Background(), Options{Client: fake.NewClientset(objs...), Context: "gke_p_europe-west1_prod",
		Images: func(context.Context, string) ([]Source, error) {
			t.Fatal("built images for a cluster that pulls")
			return nil, nil
		}})
	if res != nil || err != nil {
		t.Fatalf("%+v %v", res, err)
	}
}
