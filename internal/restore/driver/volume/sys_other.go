//go:build !linux && !darwin

package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// The volume driver restores with Unix system calls relative to open
// directories (openat, renameat, fchown), which Windows does not have.
// Capture works (without owners: Windows files have none in the Unix
// sense); Plan and Restore fail with an error wrapping
// errors.ErrUnsupported. Volume components are restored by the agent in
// the cluster, which runs on Linux.

type plannedDiff struct{}

func unsupported(c statepkg.Component) error {
	return fmt.Errorf("volume component %q: restoring a volume on %s: %w: the volume driver needs Linux or macOS; restore volume components through the agent in the cluster", c.Name, runtime.GOOS, errors.ErrUnsupported)
}

// Plan fails: see unsupported.
func (*Driver) Plan(_ context.Context, c statepkg.Component, _ driver.Target) (driver.ComponentPlan, error) {
	return driver.ComponentPlan{}, unsupported(c)
}

// Restore fails: see unsupported.
func (*Driver) Restore(_ context.Context, c statepkg.Component, _ driver.ChunkSource, _ driver.Target, _ driver.Progress) (driver.ComponentResult, error) {
	return driver.ComponentResult{}, unsupported(c)
}

func statOf(fs.FileInfo) (sysStat, bool) { return sysStat{}, false }
