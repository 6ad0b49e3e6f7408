// Package e2e holds end-to-end tests that run against a real Kubernetes
// cluster: the local single-node cluster of test/cluster, or the cluster
// KUBECONFIG_E2E names. They run under plain `go test ./...`.
package e2e
