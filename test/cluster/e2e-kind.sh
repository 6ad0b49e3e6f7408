#!/usr/bin/env bash
# Runs the e2e tests on a kind cluster (for machines with Docker and kind):
# builds the harness's image tars, loads them into the kind nodes and points
# the tests at the cluster through KUBECONFIG_E2E.
set -euo pipefail
cluster=${KIND_CLUSTER:-unikube-e2e}
command -v kind >/dev/null || { echo "e2e-kind: kind is not installed (https://kind.sigs.k8s.io)" >&2; exit 1; }
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
go run ./test/cluster/cmd/cluster images | while read -r ref tar; do
  echo "e2e-kind: loading $ref"
  kind load image-archive --name "$cluster" "$tar"
done
kc=$(mktemp)
trap 'rm -f "$kc"' EXIT
kind get kubeconfig --name "$cluster" > "$kc"
KUBECONFIG_E2E=$kc go test -count=1 -timeout "${TEST_TIMEOUT:-80m}" ./test/...
