// Package rbac ships the executor's Roles as the file users apply
// (roles.yaml next to this file); internal/kube/rbac reads them from here,
// so the file users apply and the rights the executor checks are one.
package rbac

import _ "embed"

// RolesYAML is roles.yaml: one namespaced Role per operation.
//
//go:embed roles.yaml
var RolesYAML []byte
