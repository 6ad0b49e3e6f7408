// Package images builds the release images of unikube-agent and
// unikube-platform without Docker, writes them as OCI image layouts and
// pushes them to any OCI registry. Everything goes through
// go-containerregistry; the only layer content written here is a handful of
// small files (passwd, group, the CA bundle) and the static binary.
//
// Each image is a multi-platform index (linux/amd64 and linux/arm64 by
// default) of images with two layers: a base shared by both images (CA
// certificates, a non-root user, /tmp) and the binary. There is no shell.
// Equal inputs give equal digests: file times and the config's creation
// time come from Meta.Created (SOURCE_DATE_EPOCH or the commit time), and
// the binaries are built with -trimpath and an empty build ID.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the uid and gid the images run as (distroless' "nonroot").
const NonRootUID = 65532

// DefaultCABundle is where Debian (and Alpine, Fedora's compat link) keep
// the system's CA certificates; the images carry a copy at the same path,
// where Go's crypto/x509 looks first.
const DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

// DefaultSource is the repository the images are built from.
const DefaultSource = "https://github.com/unikubehq/terraform-provider-unikube"

// OCI label keys (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
	LabelSource      = "org.opencontainers.image.source"
	LabelRefName     = "org.opencontainers.image.ref.name"
)

// Component is one image: a command of this module and how it runs.
type Component struct {
	Name        string // image and binary name, e.g. unikube-agent
	Package     string // Go package, e.g. ./cmd/unikube-agent
	Description string
	Env         []string
	WorkingDir  string // made, owned by the non-root user, when not "/"
	Ports       []string
}

// Components are the images `make images` builds, in build order.
var Components = []Component{
	{
		Name: "unikube-agent", Package: "./cmd/unikube-agent",
		Description: "Unikube State in-cluster agent: restores and captures data in Kubernetes Jobs",
		WorkingDir:  "/",
	},
	{
		Name: "unikube-platform", Package: "./cmd/unikube-platform",
		Description: "Unikube State platform server: named states, versions and chunks over HTTP",
		// Inside a container the loopback default would be unreachable; the
		// embedded data directory (./unikube-data) lands in a writable
		// directory, where a volume is usually mounted.
		Env:        []string{"UNIKUBE_LISTEN=:8080"},
		WorkingDir: "/var/lib/unikube",
		Ports:      []string{"8080/tcp"},
	},
}

// Lookup returns the component called name.
func Lookup(name string) (Component, error) {
	for _, c := range Components {
		if c.Name == name {
			return c, nil
		}
	}
	return Component{}, fmt.Errorf("unknown image %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the components' names.
func Names() []string {
	out := make([]string, 0, len(Components))
	for _, c := range Components {
		out = append(out, c.Name)
	}
	return out
}

// DefaultPlatforms are the platforms a release image covers.
var DefaultPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// ParsePlatforms reads "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil || p.OS != "linux" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want linux/<arch>, e.g. linux/amd64", f)
		}
		out = append(out, *p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform in %q: want e.g. linux/amd64,linux/arm64", s)
	}
	return out, nil
}

// Meta is what the images say about themselves: their labels, the version
// baked into the binaries, and the time stamped on every file.
type Meta struct {
	Version  string    // e.g. v0.3.0 or 1a2b3c4-dirty; also the tag pushed
	Revision string    // full commit hash
	Created  time.Time // SOURCE_DATE_EPOCH, else the commit time
	Source   string    // repository URL
}

// buildinfoPkg is the package whose variables the linker sets to the
// version, commit and date of a build (internal/buildinfo).
const buildinfoPkg = "github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"

// LDFlags are the -X linker flags that bake m into a binary's
// internal/buildinfo: the version the agent reports to its clients and
// `unikube-platform version` prints.
func LDFlags(m Meta) string {
	f := "-X " + buildinfoPkg + ".version=" + m.Version
	if m.Revision != "" {
		f += " -X " + buildinfoPkg + ".commit=" + m.Revision
	}
	if !m.Created.IsZero() {
		f += " -X " + buildinfoPkg + ".date=" + m.Created.UTC().Format(time.RFC3339)
	}
	return f
}

// MetaFromGit fills Meta from the repository at root: `git describe --tags
// --always --dirty` for the version, HEAD for the revision, and
// SOURCE_DATE_EPOCH (from getenv) or the commit time for Created.
func MetaFromGit(ctx context.Context, root string, getenv func(string) string) (Meta, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s in %s: %w (set the version explicitly when building outside a git checkout)", strings.Join(args, " "), root, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	m := Meta{Source: DefaultSource}
	var err error
	if m.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
		return Meta{}, err
	}
	if m.Revision, err = git("rev-parse", "HEAD"); err != nil {
		return Meta{}, err
	}
	epoch := getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git("log", "-1", "--format=%ct"); err != nil {
			return Meta{}, err
		}
	}
	if m.Created, err = ParseEpoch(epoch); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// ParseEpoch reads a SOURCE_DATE_EPOCH value (seconds since 1970, UTC).
func ParseEpoch(s string) (time.Time, error) {
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err != nil || sec < 0 || fmt.Sprint(sec) != s {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970, e.g. 1700000000", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Builder builds the images from the module at RepoRoot.
type Builder struct {
	RepoRoot  string // the module root (go.mod)
	WorkDir   string // where the binaries are built; a temporary directory when empty
	CABundle  string // DefaultCABundle when empty
	Platforms []v1.Platform
	Meta      Meta
	Log       *slog.Logger
}

// Built is one built image: a multi-platform index.
type Built struct {
	Name  string
	Index v1.ImageIndex
}

// Build builds the named components, every one when names is empty.
func (b *Builder) Build(ctx context.Context, names ...string) ([]Built, error) {
	if len(names) == 0 {
		names = Names()
	}
	if b.Meta.Version == "" || b.Meta.Created.IsZero() {
		return nil, fmt.Errorf("build images: version and creation time are required (see MetaFromGit)")
	}
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	platforms := b.Platforms
	if len(platforms) == 0 {
		platforms = DefaultPlatforms
	}
	work := b.WorkDir
	if work == "" {
		tmp, err := os.MkdirTemp("", "unikube-images-")
		if err != nil {
			return nil, fmt.Errorf("build images: %w", err)
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	base, err := b.baseLayer()
	if err != nil {
		return nil, err
	}
	var out []Built
	for _, n := range names {
		c, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, p := range platforms {
			bin := filepath.Join(work, p.OS+"-"+p.Architecture, c.Name)
			start := time.Now()
			if err := b.goBuild(ctx, c, p, bin); err != nil {
				return nil, err
			}
			img, err := b.image(c, p, base, bin)
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %w", c.Name, p.String(), err)
			}
			log.Info("built image", "image", c.Name, "platform", p.String(), "took", time.Since(start).Round(time.Millisecond))
			pc := p
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pc}})
		}
		// The index carries the labels as annotations too, so registries
		// that show only the index (the tag) still show them.
		annotated, ok := mutate.Annotations(idx, b.labels(c)).(v1.ImageIndex)
		if !ok {
			return nil, fmt.Errorf("image %s: annotating the index gave no index", c.Name)
		}
		out = append(out, Built{Name: c.Name, Index: annotated})
	}
	return out, nil
}

// goBuild cross-compiles a static binary with the version baked in.
func (b *Builder) goBuild(ctx context.Context, c Component, p v1.Platform, out string) error {
	ldflags := "-s -w -buildid= " + LDFlags(b.Meta)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, c.Package)
	cmd.Dir = b.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", c.Package, p.String(), err, o)
	}
	return nil
}

func (b *Builder) labels(c Component) map[string]string {
	l := map[string]string{
		LabelTitle:       c.Name,
		LabelDescription: c.Description,
		LabelVersion:     b.Meta.Version,
		LabelCreated:     b.Meta.Created.UTC().Format(time.RFC3339),
		LabelSource:      b.Meta.Source,
	}
	if b.Meta.Revision != "" {
		l[LabelRevision] = b.Meta.Revision
	}
	return l
}

func (b *Builder) image(c Component, p v1.Platform, base v1.Layer, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	files := []file{{name: c.Name, mode: 0o755, data: data}}
	if c.WorkingDir != "/" {
		files = append([]file{{name: strings.TrimPrefix(c.WorkingDir, "/") + "/", mode: 0o700, uid: NonRootUID}}, files...)
	}
	binLayer, err := b.layer(files)
	if err != nil {
		return nil, err
	}
	ports := map[string]struct{}{}
	for _, pt := range c.Ports {
		ports[pt] = struct{}{}
	}
	if len(ports) == 0 {
		ports = nil
	}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture, OS: p.OS, Variant: p.Variant,
		Created: v1.Time{Time: b.Meta.Created},
		Config: v1.Config{
			Entrypoint:   []string{"/" + c.Name},
			Env:          append([]string{"PATH=/", "HOME=/home/nonroot", "SSL_CERT_FILE=" + DefaultCABundle}, c.Env...),
			User:         fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
			WorkingDir:   c.WorkingDir,
			Labels:       b.labels(c),
			ExposedPorts: ports,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	created := v1.Time{Time: b.Meta.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "unikube-images: CA certificates, non-root user " + fmt.Sprint(NonRootUID)}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "unikube-images: /" + c.Name + " " + b.Meta.Version}},
	)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	return img, nil
}

// baseLayer holds what every image shares: the CA bundle, passwd and group
// naming the non-root user, its home and /tmp.
func (b *Builder) baseLayer() (v1.Layer, error) {
	caPath := b.CABundle
	if caPath == "" {
		caPath = DefaultCABundle
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install the ca-certificates package or pass another bundle)", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it", caPath)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID)
	return b.layer([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: NonRootUID},
		{name: "tmp/", mode: 0o1777},
	})
}

// file is one tar entry; a name ending in "/" is a directory.
type file struct {
	name string
	mode int64
	uid  int
	data []byte
}

// layer writes files as a tar in the given order (parents first) with every
// time set to Meta.Created, so the same files give the same digest.
func (b *Builder) layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: b.Meta.Created, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if f.uid != 0 {
			hdr.Uname, hdr.Gname = "nonroot", "nonroot"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}

// Platforms lists the platforms of idx's images in index order.
func Platforms(idx v1.ImageIndex) ([]v1.Platform, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var out []v1.Platform
	for _, d := range m.Manifests {
		if d.Platform != nil {
			out = append(out, *d.Platform)
		}
	}
	return out, nil
}

// Size is how big one platform's image is.
type Size struct {
	Platform     v1.Platform
	Compressed   int64 // what a pull downloads: config and layers as stored
	Uncompressed int64 // the layers unpacked
}

// Sizes reports each platform's image size in idx.
func Sizes(idx v1.ImageIndex) ([]Size, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var out []Size
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d.Digest, err)
		}
		mf, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d.Digest, err)
		}
		s := Size{Compressed: mf.Config.Size}
		if d.Platform != nil {
			s.Platform = *d.Platform
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d.Digest, err)
		}
		for _, l := range layers {
			c, err := l.Size()
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", d.Digest, err)
			}
			s.Compressed += c
			n, err := uncompressedSize(l)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", d.Digest, err)
			}
			s.Uncompressed += n
		}
		out = append(out, s)
	}
	return out, nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}
