// Package kube holds the Kubernetes side of Unikube State, split into
// small packages with one job each:
//
//   - access: a client from a kubeconfig (path, context), an explicit
//     host/token/CA, or the in-cluster config;
//   - discovery: map components to workloads, Services, PVCs, images and
//     credentials Secrets by label selector or explicit mapping;
//   - jobs: the one Job runner (create with owned Secrets/ConfigMaps, the
//     pod states that end a Job, log tails, uid defaults) used by the agent
//     Jobs built here (database image + agent copied in by an init
//     container; volume Jobs mounting the PVC) and by internal/scriptrun;
//     the agent's arguments and lines are internal/agentproto's;
//   - quiesce: scale workloads to zero and back, recoverable from
//     annotations;
//   - records: the record Secrets unikube.state.v1.<release>.v<N>;
//   - rbac: the namespaced Role and the SelfSubjectAccessReview pre-check;
//   - executor: one apply of a version onto a namespace, tying them together.
package kube
