package quickstart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/release/images"
	"github.com/unikubehq/terraform-provider-unikube/test/quickstart/imageload"
)

// agentImageName is the image the quickstart's agent Jobs run.
const agentImageName = "unikube-agent"

// clusterImages gets the agent image into a kind, k3d or minikube cluster
// (see package imageload) and makes the provider and the plugin use it.
// Other clusters pull from registries: QUICKSTART_AGENT_IMAGE names one
// there (the default is the client's own).
func (r *run) clusterImages(ctx context.Context) error {
	if r.cfg.AgentImage != "" {
		r.st.AgentImage = r.cfg.AgentImage
		fmt.Fprintf(r.cfg.Out, "    agent image %s (QUICKSTART_AGENT_IMAGE)\n", r.cfg.AgentImage)
		return nil
	}
	kc, err := clientcmd.LoadFromFile(r.st.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", r.st.Kubeconfig, err)
	}
	meta, err := images.MetaFromGit(ctx, r.cfg.Root, os.Getenv)
	if err != nil {
		meta = images.Meta{Created: time.Unix(0, 0).UTC(), Source: images.DefaultSource}
	}
	// The quickstart's clients (the plugin it builds, the provider's
	// snapshot) are development builds: the agent handshake accepts only an
	// agent of the same version.
	meta.Version = buildinfo.Dev
	res, err := imageload.Ensure(ctx, imageload.Options{
		Client:  r.kube.Client,
		Context: kc.CurrentContext,
		Names:   []imageload.Image{{Name: agentImageName, Tag: meta.Version}},
		Images: func(ctx context.Context, arch string) ([]imageload.Source, error) {
			return r.agentIndex(ctx, meta, arch)
		},
		ArchiveDir: filepath.Join(r.cfg.Dir, "images"),
		LookPath:   r.lookPath,
		Run: func(ctx context.Context, name string, args ...string) error {
			return r.command(ctx, r.cfg.Root, nil, name, args...)
		},
		Out: r.cfg.Out,
	})
	if err != nil {
		return err
	}
	if res == nil {
		return nil
	}
	r.st.AgentImage = res.Refs[agentImageName]
	fmt.Fprintf(r.cfg.Out, "    %s cluster %q: agent Jobs run %s\n", res.Cluster.Tool, res.Cluster.Name, r.st.AgentImage)
	return nil
}

// agentIndex is the agent image of this checkout for linux/arch: the
// layout `make images` wrote to dist/images when it is of this commit,
// else built now (one platform, a few seconds).
func (r *run) agentIndex(ctx context.Context, meta images.Meta, arch string) ([]imageload.Source, error) {
	src := func(idx v1.ImageIndex) []imageload.Source {
		return []imageload.Source{{Image: imageload.Image{Name: agentImageName, Tag: meta.Version}, Index: idx}}
	}
	if idx, version, err := images.ReadLayout(filepath.Join(r.cfg.Root, "dist", "images"), agentImageName); err == nil && version == meta.Version {
		if ps, err := images.Platforms(idx); err == nil {
			for _, p := range ps {
				if p.OS == "linux" && p.Architecture == arch {
					fmt.Fprintf(r.cfg.Out, "    %s %s from dist/images (make images)\n", agentImageName, version)
					return src(idx), nil
				}
			}
		}
	}
	fmt.Fprintf(r.cfg.Out, "    building %s %s for linux/%s (internal/release/images, as make images does)\n", agentImageName, meta.Version, arch)
	b := &images.Builder{RepoRoot: r.cfg.Root, Platforms: []v1.Platform{{OS: "linux", Architecture: arch}}, Meta: meta}
	built, err := b.Build(ctx, agentImageName)
	if err != nil {
		return nil, err
	}
	return src(built[0].Index), nil
}
