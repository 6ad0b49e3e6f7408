//go:build tools

// Package tools pins the etcd command test/cluster builds from this module.
package tools

import _ "go.etcd.io/etcd/server/v3"
