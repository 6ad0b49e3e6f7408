//go:build !linux

package cluster

import (
	"errors"
	"fmt"
)

// detachMount fails: the local cluster runs on Linux only (mounts it makes
// exist only there).
func detachMount(mp string) error {
	return fmt.Errorf("unmount %s: %w: the local cluster runs on Linux only", mp, errors.ErrUnsupported)
}
