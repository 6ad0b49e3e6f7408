package imageload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/images"
)

// Source is one image to get into the cluster: its multi-platform index
// (an OCI layout from `make images`, see images.ReadLayout).
type Source struct {
	Image
	Index v1.ImageIndex
}

// Options of Ensure.
type Options struct {
	Client kubernetes.Interface
	// Context is the kubeconfig's current context name.
	Context string
	// Images yields the images once Ensure knows the cluster is one it
	// loads into and which platform it runs (arch: amd64, arm64), so
	// nothing is built for other clusters. Names lists them up front.
	Names  []Image
	Images func(ctx context.Context, arch string) ([]Source, error)
	// ArchiveDir holds the archives the cluster tool loads.
	ArchiveDir string
	// LookPath finds a command (default: exec.LookPath through os).
	LookPath func(string) (string, bool)
	// Run runs a command, its output going to the user.
	Run func(ctx context.Context, name string, args ...string) error
	// Push uploads an index (default: images.Push, anonymous or the
	// Docker config file's credentials).
	Push func(ctx context.Context, idx v1.ImageIndex, ref name.Reference) error
	Out  io.Writer
}

// Result says where the images went.
type Result struct {
	Cluster Cluster
	// Refs are the references pods use, by image name.
	Refs map[string]string
}

// Ensure gets the images into the cluster if it is kind, k3d or minikube
// (nil Result, nil error for any other cluster: it pulls from registries
// as usual), the way that cluster expects (see the package comment).
func Ensure(ctx context.Context, o Options) (*Result, error) {
	nodes, err := o.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes to tell the kind of cluster: %w", err)
	}
	c := Detect(o.Context, nodes.Items)
	if c == nil {
		return nil, nil
	}
	cm, err := o.Client.CoreV1().ConfigMaps(RegistryNamespace).Get(ctx, RegistryConfigMap, metav1.GetOptions{})
	switch {
	case err == nil && cm.Data[RegistryKey] != "":
		if c.Registry, err = ParseRegistry(cm.Data[RegistryKey]); err != nil {
			return nil, err
		}
	case err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err):
		return nil, fmt.Errorf("read %s/%s: %w", RegistryNamespace, RegistryConfigMap, err)
	}
	look := o.LookPath
	if look == nil {
		look = lookPath
	}
	plan, err := MakePlan(*c, o.Names, o.ArchiveDir, func(n string) bool { _, ok := look(n); return ok })
	if err != nil {
		var nw *NoWayError
		if errors.As(err, &nw) {
			// Write the archives anyway: the commands in the error load them.
			if srcs, serr := o.Images(ctx, c.Arch); serr == nil {
				_ = writeArchives(plan, srcs)
			}
		}
		return nil, err
	}
	srcs, err := o.Images(ctx, c.Arch)
	if err != nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if plan.PushTo != "" {
		fmt.Fprintf(out, "    %s cluster %q documents a local registry at %s: pushing there\n", c.Tool, c.Name, plan.PushTo)
		push := o.Push
		if push == nil {
			push = func(ctx context.Context, idx v1.ImageIndex, ref name.Reference) error {
				return images.Push(ctx, idx, ref, images.PushOptions{})
			}
		}
		for _, s := range srcs {
			ref, err := images.Reference(plan.PushTo, s.Name, s.Tag, true)
			if err != nil {
				return nil, err
			}
			if err := push(ctx, s.Index, ref); err != nil {
				return nil, fmt.Errorf("push %s to the %s cluster's registry (%s): %w", ref, c.Tool, plan.PushTo, err)
			}
			fmt.Fprintf(out, "    pushed %s (pods pull %s)\n", ref, plan.Refs[s.Name])
		}
		return &Result{Cluster: *c, Refs: plan.Refs}, nil
	}
	if err := writeArchives(plan, srcs); err != nil {
		return nil, err
	}
	for _, cmd := range plan.Commands {
		fmt.Fprintf(out, "    %s\n", cmd)
		if err := o.Run(ctx, cmd.Name, cmd.Args...); err != nil {
			return nil, fmt.Errorf("load the images into %s cluster %q: %w", c.Tool, c.Name, err)
		}
	}
	return &Result{Cluster: *c, Refs: plan.Refs}, nil
}

// writeArchives saves each source's image for the cluster's platform as a
// docker-archive (what all three tools load) tagged with its reference.
func writeArchives(p Plan, srcs []Source) error {
	for _, s := range srcs {
		path, ok := p.Archives[s.Name]
		if !ok {
			continue
		}
		img, err := platformImage(s.Index, p.Cluster.Arch)
		if err != nil {
			return fmt.Errorf("image %s: %w", s.Name, err)
		}
		tag, err := name.NewTag(p.Refs[s.Name])
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// platformImage is the linux/arch image of idx.
func platformImage(idx v1.ImageIndex, arch string) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			return idx.Image(d.Digest)
		}
		have = append(have, d.Platform.String())
	}
	return nil, fmt.Errorf("no linux/%s image (have %v): build it with make images, or unikube-images build -platforms linux/%s", arch, have, arch)
}
