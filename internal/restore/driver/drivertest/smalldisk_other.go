//go:build !linux

package drivertest

import "testing"

// SmallDisk skips: a small filesystem is mounted on Linux only.
func SmallDisk(t testing.TB, size int64) string {
	t.Skip("a full disk is simulated on Linux only")
	return ""
}
