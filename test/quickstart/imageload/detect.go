// Package imageload gets the quickstart's images into a kind, k3d or
// minikube cluster the way that cluster expects: pushed to the local
// registry the cluster documents (the kube-public/local-registry-hosting
// ConfigMap of KEP-1755, which kind's and k3d's registry setups write),
// else loaded with the cluster tool's own command (`kind load
// image-archive`, `k3d image import`, `minikube image load`) when it is on
// PATH; otherwise it stops and says exactly what to run. Ensure is the one
// entry point; Detect and MakePlan are the pure logic it uses.
package imageload

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Tool is the kind of local cluster, named after its command.
type Tool string

// The clusters Detect recognises.
const (
	Kind     Tool = "kind"
	K3d      Tool = "k3d"
	Minikube Tool = "minikube"
)

// Cluster is a local cluster Detect recognised.
type Cluster struct {
	Tool Tool
	// Name is the kind or k3d cluster name, or the minikube profile: what
	// the tool's --name/--cluster/--profile flag takes.
	Name string
	// Arch of the nodes (amd64, arm64): the platform an archive holds.
	Arch string
	// Registry is the local registry the cluster documents, if any.
	Registry *Registry
	// By says what gave the cluster away (for messages).
	By string
}

var (
	k3dNode  = regexp.MustCompile(`^k3d-(.+)-(server|agent)-\d+$`)
	kindNode = regexp.MustCompile(`^(.+)-(control-plane|worker)\d*$`)
)

// Detect tells from the nodes and the kubeconfig's current context whether
// the cluster is kind, k3d or minikube (nil: none of them). The nodes'
// own marks come first: kind's provider ID (kind://docker/CLUSTER/NODE),
// minikube's node label minikube.k8s.io/name, k3s's provider ID and k3d's
// node names (k3d-CLUSTER-server-0); then node names with the context
// (kind names nodes CLUSTER-control-plane, its context kind-CLUSTER;
// minikube's node and context are the profile, "minikube" by default);
// then the context name alone (kind-CLUSTER, k3d-CLUSTER, minikube).
func Detect(context string, nodes []corev1.Node) *Cluster {
	c := detect(context, nodes)
	if c == nil {
		return nil
	}
	c.Arch = "amd64"
	for _, n := range nodes {
		if a := n.Status.NodeInfo.Architecture; a != "" {
			c.Arch = a
			break
		}
	}
	return c
}

func detect(context string, nodes []corev1.Node) *Cluster {
	for _, n := range nodes {
		if rest, ok := strings.CutPrefix(n.Spec.ProviderID, "kind://"); ok {
			// kind://PROVIDER/CLUSTER/NODE
			if parts := strings.Split(rest, "/"); len(parts) == 3 && parts[1] != "" {
				return &Cluster{Tool: Kind, Name: parts[1], By: "node " + n.Name + " provider ID " + n.Spec.ProviderID}
			}
		}
		if p := n.Labels["minikube.k8s.io/name"]; p != "" {
			return &Cluster{Tool: Minikube, Name: p, By: "node " + n.Name + " label minikube.k8s.io/name=" + p}
		}
		name := n.Name
		if rest, ok := strings.CutPrefix(n.Spec.ProviderID, "k3s://"); ok {
			name = rest
		}
		if m := k3dNode.FindStringSubmatch(name); m != nil {
			return &Cluster{Tool: K3d, Name: m[1], By: "node " + n.Name + " named like k3d-CLUSTER-server-0"}
		}
	}
	for _, n := range nodes {
		if m := kindNode.FindStringSubmatch(n.Name); m != nil && context == "kind-"+m[1] {
			return &Cluster{Tool: Kind, Name: m[1], By: "node " + n.Name + " and context " + context}
		}
		if n.Name == context && (context == "minikube" || n.Labels["minikube.k8s.io/primary"] == "true") {
			return &Cluster{Tool: Minikube, Name: context, By: "node and context " + context}
		}
	}
	switch {
	case strings.HasPrefix(context, "kind-") && len(context) > len("kind-"):
		return &Cluster{Tool: Kind, Name: strings.TrimPrefix(context, "kind-"), By: "context " + context}
	case strings.HasPrefix(context, "k3d-") && len(context) > len("k3d-"):
		return &Cluster{Tool: K3d, Name: strings.TrimPrefix(context, "k3d-"), By: "context " + context}
	case context == "minikube":
		return &Cluster{Tool: Minikube, Name: "minikube", By: "context minikube"}
	}
	return nil
}
