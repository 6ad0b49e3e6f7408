//go:build linux || darwin

package volume

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Marker is the content of .unikube-state.json at the top of a target.
type Marker struct {
	State           string    `json:"state,omitempty"`
	Digest          string    `json:"digest,omitempty"`
	Component       string    `json:"component"`
	ComponentDigest string    `json:"componentDigest"`
	AppliedAt       time.Time `json:"appliedAt"`

	// stamp is the marker file's ctime, on the filesystem's own (coarse)
	// clock: a file whose ctime is strictly older has not been touched
	// since the apply that wrote the marker.
	stamp time.Time
}

func readMarker(root *os.Root) *Marker {
	b, err := root.ReadFile(MarkerName)
	if err != nil {
		return nil
	}
	var m Marker
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	fi, err := root.Lstat(MarkerName)
	if err != nil {
		return nil
	}
	m.stamp = statCtime(fi)
	return &m
}

func writeMarker(root *os.Root, c statepkg.Component, t driver.Target) error {
	m := Marker{State: t.State, Digest: t.Digest, Component: c.Name, ComponentDigest: c.Digest, AppliedAt: time.Now().UTC()}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := MarkerName + ".tmp"
	if err := root.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return root.Rename(tmp, MarkerName)
}

// ReadMarker returns the marker of a volume target, or nil when it has none.
func ReadMarker(dir string) *Marker {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil
	}
	defer root.Close()
	return readMarker(root)
}
