package imageload

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// The ConfigMap in which a cluster documents its local registry
// (KEP-1755, "Standard for communicating a local registry"); kind's and
// k3d's registry setups write it.
const (
	RegistryNamespace = "kube-public"
	RegistryConfigMap = "local-registry-hosting"
	RegistryKey       = "localRegistryHosting.v1"
)

// Registry is localRegistryHosting.v1.
type Registry struct {
	// Host is where the registry is reached from this machine (push).
	Host string `json:"host"`
	// HostFromContainerRuntime is what the nodes' container runtime pulls
	// from (image references in pods); empty: Host.
	HostFromContainerRuntime string `json:"hostFromContainerRuntime"`
	// HostFromClusterNetwork is the registry as pods reach it.
	HostFromClusterNetwork string `json:"hostFromClusterNetwork"`
	// Help is the cluster's documentation of its registry.
	Help string `json:"help"`
}

// ParseRegistry reads the ConfigMap's localRegistryHosting.v1 value.
func ParseRegistry(v string) (*Registry, error) {
	var r Registry
	if err := yaml.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("%s/%s %s: %w", RegistryNamespace, RegistryConfigMap, RegistryKey, err)
	}
	r.Host = strings.TrimSuffix(strings.TrimSpace(r.Host), "/")
	if r.Host == "" {
		return nil, fmt.Errorf("%s/%s %s names no host", RegistryNamespace, RegistryConfigMap, RegistryKey)
	}
	return &r, nil
}

// Pull is the registry host in the image references pods use.
func (r Registry) Pull() string {
	if h := strings.TrimSuffix(strings.TrimSpace(r.HostFromContainerRuntime), "/"); h != "" {
		return h
	}
	return r.Host
}
