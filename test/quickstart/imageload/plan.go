package imageload

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Image is one image the cluster needs: REPOSITORY/Name:Tag.
type Image struct {
	Name string // e.g. unikube-agent
	Tag  string // the version it was built as
}

// ArchiveRef is the reference an image loaded from an archive gets, and
// the one pods use with imagePullPolicy IfNotPresent: "localhost/" keeps
// the runtime from ever trying a public registry for it.
func ArchiveRef(img Image) string { return "localhost/" + img.Name + ":" + img.Tag }

// Command is one command line Ensure runs.
type Command struct {
	Name string
	Args []string
}

func (c Command) String() string { return strings.Join(append([]string{c.Name}, c.Args...), " ") }

// Plan is how the images get into the cluster: pushed to PushTo, or saved
// as Archives and loaded by Commands. Refs are the references pods use.
type Plan struct {
	Cluster  Cluster
	PushTo   string            // registry host (from this machine); "" when loading archives
	Archives map[string]string // image name → docker-archive file the commands load
	Commands []Command
	Refs     map[string]string // image name → reference in pods
}

// NoWayError says the images cannot get into the cluster from here, and
// exactly what the user can do.
type NoWayError struct {
	Cluster  Cluster
	Commands []Command
}

func (e *NoWayError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the cluster is %s cluster %q (%s), which documents no local registry (no ConfigMap %s/%s), and `%s` is not on PATH, so the images cannot be loaded into it from here. Either install %s (%s) and run `make quickstart` again, or load the archives yourself and run it again:",
		e.Cluster.Tool, e.Cluster.Name, e.Cluster.By, RegistryNamespace, RegistryConfigMap, e.Cluster.Tool, e.Cluster.Tool, installHint[e.Cluster.Tool])
	for _, c := range e.Commands {
		fmt.Fprintf(&b, "\n    %s", c)
	}
	fmt.Fprintf(&b, "\nor push them to a registry the cluster pulls from (make push-images REGISTRY=HOST/PATH) and set QUICKSTART_AGENT_IMAGE=HOST/PATH/unikube-agent:TAG.")
	return b.String()
}

var installHint = map[Tool]string{
	Kind:     "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
	K3d:      "https://k3d.io/#installation",
	Minikube: "https://minikube.sigs.k8s.io/docs/start/",
}

// LoadCommand is the command that loads archive into the cluster c.
func LoadCommand(c Cluster, archive string) Command {
	switch c.Tool {
	case Kind:
		return Command{Name: "kind", Args: []string{"load", "image-archive", archive, "--name", c.Name}}
	case K3d:
		return Command{Name: "k3d", Args: []string{"image", "import", archive, "--cluster", c.Name}}
	}
	return Command{Name: "minikube", Args: []string{"image", "load", archive, "--profile", c.Name}}
}

// MakePlan decides how imgs get into c: its registry when it documents
// one; else archives in archiveDir loaded by the cluster tool when
// onPath(tool); else a *NoWayError naming the commands to run.
func MakePlan(c Cluster, imgs []Image, archiveDir string, onPath func(string) bool) (Plan, error) {
	p := Plan{Cluster: c, Refs: map[string]string{}}
	if c.Registry != nil {
		p.PushTo = c.Registry.Host
		for _, img := range imgs {
			p.Refs[img.Name] = c.Registry.Pull() + "/" + img.Name + ":" + img.Tag
		}
		return p, nil
	}
	p.Archives = map[string]string{}
	for _, img := range imgs {
		a := filepath.Join(archiveDir, img.Name+"-"+img.Tag+"-linux-"+c.Arch+".tar")
		p.Archives[img.Name] = a
		p.Commands = append(p.Commands, LoadCommand(c, a))
		p.Refs[img.Name] = ArchiveRef(img)
	}
	if !onPath(string(c.Tool)) {
		return p, &NoWayError{Cluster: c, Commands: p.Commands}
	}
	return p, nil
}
