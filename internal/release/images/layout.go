package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// WriteLayouts writes each built image as an OCI image layout in dir/<name>
// (the form `skopeo copy oci:dir/<name>:<version>`, crane and containerd
// read): its index.json names the multi-platform index with the version as
// org.opencontainers.image.ref.name. A previous layout there is replaced, so
// no stale blobs accumulate; any other directory in the way is an error.
func WriteLayouts(dir, version string, built []Built) error {
	for _, b := range built {
		path := filepath.Join(dir, b.Name)
		if err := clearLayout(path); err != nil {
			return err
		}
		p, err := layout.Write(path, empty.Index)
		if err != nil {
			return fmt.Errorf("write OCI layout %s: %w", path, err)
		}
		if err := p.AppendIndex(b.Index, layout.WithAnnotations(map[string]string{LabelRefName: version})); err != nil {
			return fmt.Errorf("write OCI layout %s: %w", path, err)
		}
	}
	return nil
}

func clearLayout(path string) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(path, "oci-layout")); err != nil {
		return fmt.Errorf("output %s exists and is not an OCI image layout; remove it or choose another output directory", path)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("replace OCI layout %s: %w", path, err)
	}
	return nil
}

// ReadLayout opens the layout dir/<name> that WriteLayouts wrote and returns
// its multi-platform index and version.
func ReadLayout(dir, name string) (v1.ImageIndex, string, error) {
	path := filepath.Join(dir, name)
	p, err := layout.FromPath(path)
	if err != nil {
		return nil, "", fmt.Errorf("read OCI layout %s: %w (run make images first)", path, err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("read OCI layout %s: %w", path, err)
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("read OCI layout %s: %w", path, err)
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, "", fmt.Errorf("OCI layout %s: want exactly one multi-platform index in index.json, found %d entries (rebuild with make images)", path, len(m.Manifests))
	}
	d := m.Manifests[0]
	idx, err := outer.ImageIndex(d.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("read OCI layout %s: index %s: %w", path, d.Digest, err)
	}
	return idx, d.Annotations[LabelRefName], nil
}
