// Package kube holds the Kubernetes side of Unikube State, split into
// small packages with one job each:
//
//   - access: a client from a kubeconfig (path, context), an explicit
//     host/token/CA, or the in-cluster config;
//   - discovery: map components to workloads, Services, PVCs, images and
//     credentials Secrets by label selector or explicit mapping;
//   - jobs: build and run the agent Jobs (database image + agent copied in
//     by an init container; volume Jobs mounting the PVC), fail fast with
//     the pod's log tail;
//   - quiesce: scale workloads to zero and back, recoverable from
//     annotations;
//   - records: the record Secrets unikube.state.v1.<release>.v<N>;
//   - rbac: the namespaced Role and the SelfSubjectAccessReview pre-check;
//   - executor: one apply of a version onto a namespace, tying them together.
package kube
