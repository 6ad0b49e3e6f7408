// Package images builds the test cluster's container images without
// Docker: docker-archive tars written with go-containerregistry from the
// files of installed Debian packages (plus their shared-library closure);
// the agent and platform images are the release images
// (internal/release/images, `make images`) for this machine's platform.
// The harness pushes them to the cluster's registry; the tars also load
// into a kind node (`kind load image-archive`).
package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	release "github.com/unikubehq/terraform-provider-unikube/internal/release/images"
)

// formatVersion changes whenever the image recipes change, so cached tars
// from an older recipe are rebuilt.
const formatVersion = "7"

// Image is one built image tar.
type Image struct {
	Ref  string // the tar's own tag, e.g. localhost/postgres:15 (for kind load image-archive)
	Repo string // the path and tag in a registry, e.g. postgres:15
	Tar  string // docker-archive path
	Key  string // content key; equal keys mean equal images
}

// Builder makes image tars under ToolsDir/images.
type Builder struct {
	ToolsDir string
	RepoRoot string // for the release images
	Log      *slog.Logger
}

// Names of the images the builder knows, in build order.
var Names = []string{"pause", "busybox", "unikube-agent", "unikube-platform", "postgres", "mariadb", "redis", "python"}

// OnDemand images are built and pushed only when a test asks for them by
// name (cluster.PushImages): too large to push on every cluster start.
var OnDemand = []string{"opensearch"}

// Build makes (or reuses) the named images; all of them when names is empty.
func (b *Builder) Build(ctx context.Context, names ...string) ([]Image, error) {
	if len(names) == 0 {
		names = Names
	}
	if b.Log == nil {
		b.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var out []Image
	for _, n := range names {
		r, ok := recipes[n]
		if !ok {
			return nil, fmt.Errorf("unknown image %q (known: %s)", n, strings.Join(Names, ", "))
		}
		img, err := b.build(ctx, n, r)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// recipe describes one image.
type recipe struct {
	ref      string
	packages []string // Debian packages whose files go in
	exclude  []string // path prefixes left out
	extra    []string // host files or directories added as they are
	// trees are directories of the tools cache (ToolsDir-relative) copied
	// to a path in the image, e.g. the OpenSearch home `make tools` lays
	// out from Maven.
	trees   map[string]string
	release bool // a release image of the project (internal/release/images)
	busybox bool // /usr/bin/busybox with applet links
	files   map[string]file
	config  v1.Config
}

type file struct {
	mode    int64
	content string
	link    string
	dir     bool
	uid     int
}

const dbUID = 999

// openSearchVersion is the node `make tools` lays out in the tools cache
// (testenv.OpenSearchVersion).
const openSearchVersion = "2.19.6"

var commonExclude = []string{"/usr/share/doc", "/usr/share/man", "/usr/share/lintian", "/usr/share/locale", "/usr/share/bug",
	"/etc/init.d", "/etc/logrotate.d", "/lib/systemd", "/usr/lib/systemd", "/etc/systemd", "/usr/share/bash-completion"}

func passwd(user, home string) map[string]file {
	return map[string]file{
		"/etc/passwd":        {mode: 0o644, content: fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:%s:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", user, dbUID, dbUID, user, home)},
		"/etc/group":         {mode: 0o644, content: fmt.Sprintf("root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", user, dbUID)},
		"/etc/nsswitch.conf": {mode: 0o644, content: "passwd: files\ngroup: files\nhosts: files dns\n"},
		"/tmp":               {dir: true, mode: 0o1777},
		"/root":              {dir: true, mode: 0o700},
	}
}

func merge(ms ...map[string]file) map[string]file {
	out := map[string]file{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

var recipes = map[string]recipe{
	"pause": {ref: "localhost/pause:latest", busybox: true,
		files:  map[string]file{"/tmp": {dir: true, mode: 0o1777}},
		config: v1.Config{Entrypoint: []string{"/bin/sleep", "infinity"}}},
	"busybox": {ref: "localhost/busybox:latest", busybox: true,
		files:  passwd("app", "/tmp"),
		config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}},
	// Built by internal/release/images, as `make images` builds them.
	"unikube-agent":    {ref: "localhost/unikube-agent:dev", release: true},
	"unikube-platform": {ref: "localhost/unikube-platform:dev", release: true},
	"postgres": {ref: "localhost/postgres:15", busybox: true,
		packages: []string{"postgresql-15", "postgresql-client-15", "libpq5"},
		exclude:  []string{"/etc/postgresql", "/usr/lib/postgresql/15/lib/bitcode", "/usr/lib/postgresql/15/lib/llvmjit"},
		extra:    []string{"/usr/share/zoneinfo", "/usr/lib/locale/C.utf8"},
		files: merge(passwd("postgres", "/var/lib/postgresql"), map[string]file{
			"/var/lib/postgresql":                 {dir: true, mode: 0o755, uid: dbUID},
			"/var/lib/postgresql/data":            {dir: true, mode: 0o700, uid: dbUID},
			"/var/run/postgresql":                 {dir: true, mode: 0o2777, uid: dbUID},
			"/usr/local/bin/docker-entrypoint.sh": {mode: 0o755, content: postgresEntrypoint},
			// initdb asks `locale -a`; busybox has no such applet.
			"/usr/bin/locale": {mode: 0o755, content: "#!/bin/sh\nprintf 'C\\nC.utf8\\nPOSIX\\n'\n"},
		}),
		config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"}, Cmd: []string{"postgres"}, User: "999:999",
			Env:          []string{"PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PGDATA=/var/lib/postgresql/data", "LANG=C.UTF-8"},
			ExposedPorts: map[string]struct{}{"5432/tcp": {}}, StopSignal: "SIGINT",
		}},
	"mariadb": {ref: "localhost/mariadb:10.11", busybox: true,
		packages: []string{"mariadb-server", "mariadb-server-core", "mariadb-client", "mariadb-client-core"},
		exclude:  []string{"/etc/mysql", "/usr/bin/mariadb-service-convert", "/usr/bin/galera", "/usr/bin/wsrep"},
		extra:    []string{"/usr/share/zoneinfo", "/usr/lib/locale/C.utf8"},
		files: merge(passwd("mysql", "/var/lib/mysql"), map[string]file{
			"/etc/mysql/my.cnf":                   {mode: 0o644, content: mariadbConfig},
			"/var/lib/mysql":                      {dir: true, mode: 0o755, uid: dbUID},
			"/run/mysqld":                         {dir: true, mode: 0o2777, uid: dbUID},
			"/usr/local/bin/docker-entrypoint.sh": {mode: 0o755, content: mariadbEntrypoint},
		}),
		config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"}, Cmd: []string{"mariadbd"}, User: "999:999",
			Env:          []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
			ExposedPorts: map[string]struct{}{"3306/tcp": {}},
		}},
	// python: Debian's python3 (minimal + stdlib), bash and busybox, for
	// the cluster scripts' python and bash interpreters.
	"python": {ref: "localhost/python:3", busybox: true,
		packages: []string{"python3-minimal", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "bash"},
		exclude: []string{"/usr/lib/python3.11/ensurepip", "/usr/lib/python3.11/lib2to3", "/usr/lib/python3.11/idlelib",
			"/usr/lib/python3.11/pydoc_data", "/usr/lib/python3.11/tkinter", "/usr/lib/python3.11/turtledemo", "/usr/lib/python3.11/config-3.11-x86_64-linux-gnu"},
		files: passwd("app", "/tmp"),
		config: v1.Config{Cmd: []string{"python3"}, User: "65532:65532",
			Env: []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"}}},
	// opensearch: the node testenv runs (the Maven artifacts of
	// scripts/install-opensearch.sh) on Debian's Java 17 runtime.
	"opensearch": {ref: "localhost/opensearch:" + openSearchVersion, busybox: true,
		packages: []string{"openjdk-17-jre-headless"},
		exclude:  []string{"/usr/lib/debug", "/usr/lib/jvm/java-17-openjdk-amd64/docs", "/usr/lib/jvm/java-17-openjdk-amd64/man", "/usr/lib/jvm/java-17-openjdk-amd64/legal"},
		trees:    map[string]string{"/usr/share/opensearch": "opensearch-" + openSearchVersion},
		files: merge(passwd("opensearch", "/usr/share/opensearch"), map[string]file{
			"/usr/share/opensearch/bin":           {dir: true, mode: 0o755},
			"/usr/share/opensearch/plugins":       {dir: true, mode: 0o755},
			"/usr/share/opensearch/config":        {dir: true, mode: 0o755, uid: dbUID},
			"/usr/share/opensearch/data":          {dir: true, mode: 0o755, uid: dbUID},
			"/usr/share/opensearch/logs":          {dir: true, mode: 0o755, uid: dbUID},
			"/usr/local/bin/docker-entrypoint.sh": {mode: 0o755, content: openSearchEntrypoint},
		}),
		config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"}, Cmd: []string{"opensearch"}, User: "999:999",
			Env:          []string{"PATH=/usr/lib/jvm/java-17-openjdk-amd64/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
			WorkingDir:   "/usr/share/opensearch",
			ExposedPorts: map[string]struct{}{"9200/tcp": {}, "9300/tcp": {}},
		}},
	"redis": {ref: "localhost/redis:7", busybox: true,
		packages: []string{"redis-server", "redis-tools"},
		exclude:  []string{"/etc/redis", "/usr/bin/redis-benchmark"},
		files: merge(passwd("redis", "/data"), map[string]file{
			"/data":                               {dir: true, mode: 0o755, uid: dbUID},
			"/usr/local/bin/docker-entrypoint.sh": {mode: 0o755, content: redisEntrypoint},
		}),
		config: v1.Config{
			Entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"}, Cmd: []string{"redis-server"}, User: "999:999",
			Env: []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, WorkingDir: "/data",
			ExposedPorts: map[string]struct{}{"6379/tcp": {}},
		}},
}

func (b *Builder) build(ctx context.Context, n string, r recipe) (Image, error) {
	dir := filepath.Join(b.ToolsDir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("create image dir: %w", err)
	}
	if r.release {
		return b.buildRelease(ctx, dir, n, r)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", formatVersion, n, r.ref)
	pkgs := append([]string(nil), r.packages...)
	if r.busybox {
		pkgs = append(pkgs, "busybox-static")
	}
	if len(pkgs) > 0 {
		out, err := exec.CommandContext(ctx, "dpkg-query", append([]string{"-W", "-f", "${Package}=${Version}\n"}, pkgs...)...).Output()
		if err != nil {
			return Image{}, fmt.Errorf("dpkg-query %s: %w (install the Debian packages first: make tools)", strings.Join(pkgs, " "), err)
		}
		h.Write(out)
	}
	for dst, src := range r.trees {
		// The tree's name carries its version; its .complete marker says
		// the layout is whole.
		if _, err := os.Stat(filepath.Join(b.ToolsDir, src, ".complete")); err != nil {
			return Image{}, fmt.Errorf("%s is not laid out (make tools): %w", filepath.Join(b.ToolsDir, src), err)
		}
		fmt.Fprintf(h, "tree %s=%s\n", dst, src)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	img := Image{Ref: r.ref, Repo: strings.TrimPrefix(r.ref, "localhost/"), Key: key, Tar: filepath.Join(dir, fmt.Sprintf("%s-%s.tar", n, key))}
	if _, err := os.Stat(img.Tar); err == nil {
		return img, nil
	}
	start := time.Now()
	files, err := b.collect(ctx, r)
	if err == nil {
		err = b.addTrees(files, r.trees)
	}
	if err != nil {
		return Image{}, err
	}
	layerPath := img.Tar + ".layer"
	if err := writeLayer(layerPath, files); err != nil {
		return Image{}, err
	}
	defer os.Remove(layerPath)
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return Image{}, fmt.Errorf("layer: %w", err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH, OS: "linux", Config: r.config,
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return Image{}, fmt.Errorf("config: %w", err)
	}
	im, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return Image{}, fmt.Errorf("append layer: %w", err)
	}
	tag, err := name.NewTag(r.ref)
	if err != nil {
		return Image{}, fmt.Errorf("tag %s: %w", r.ref, err)
	}
	tmp := img.Tar + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, im); err != nil {
		return Image{}, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, img.Tar); err != nil {
		return Image{}, fmt.Errorf("store image tar: %w", err)
	}
	// Older tars of the same image are stale.
	old, _ := filepath.Glob(filepath.Join(dir, n+"-*.tar"))
	for _, o := range old {
		if o != img.Tar {
			_ = os.Remove(o)
		}
	}
	b.Log.Info("built image", "ref", r.ref, "tar", img.Tar, "files", len(files), "took", time.Since(start).Round(time.Millisecond))
	return img, nil
}

// agentCreated stamps the harness's agent image (version "dev"), so equal
// sources give equal digests and the import is skipped.
var agentCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// buildRelease builds a release image (agent, platform) with the release code (`make
// images`), for this machine's platform only, so the tests run exactly the
// image users run. Its digest is the cache key.
func (b *Builder) buildRelease(ctx context.Context, dir, n string, r recipe) (Image, error) {
	if b.RepoRoot == "" {
		return Image{}, fmt.Errorf("%s image: repository root unknown", n)
	}
	start := time.Now()
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	rb := &release.Builder{
		RepoRoot:  b.RepoRoot,
		WorkDir:   filepath.Join(dir, "build"),
		Platforms: []v1.Platform{platform},
		Meta:      release.Meta{Version: "dev", Created: agentCreated, Source: release.DefaultSource},
	}
	built, err := rb.Build(ctx, n)
	if err != nil {
		return Image{}, err
	}
	im, err := built[0].Index.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		return Image{}, fmt.Errorf("%s image index: %d manifests, %v", n, len(im.Manifests), err)
	}
	img, err := built[0].Index.Image(im.Manifests[0].Digest)
	if err != nil {
		return Image{}, fmt.Errorf("%s image: %w", n, err)
	}
	d, err := img.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("%s image digest: %w", n, err)
	}
	key := fmt.Sprintf("%s-%s", formatVersion, d.Hex[:16])
	out := Image{Ref: r.ref, Repo: strings.TrimPrefix(r.ref, "localhost/"), Key: key, Tar: filepath.Join(dir, fmt.Sprintf("%s-%s.tar", n, key))}
	if _, err := os.Stat(out.Tar); err == nil {
		return out, nil
	}
	tag, err := name.NewTag(r.ref)
	if err != nil {
		return Image{}, fmt.Errorf("tag %s: %w", r.ref, err)
	}
	tmp := out.Tar + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return Image{}, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out.Tar); err != nil {
		return Image{}, fmt.Errorf("store image tar: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, n+"-*.tar"))
	for _, o := range old {
		if o != out.Tar {
			_ = os.Remove(o)
		}
	}
	b.Log.Info("built image", "ref", r.ref, "tar", out.Tar, "digest", d.String(), "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// entry is one file of a layer: where it goes and where it comes from.
type entry struct {
	path string // in the image
	src  string // host path ("" for synthesized)
	f    file
}

func (b *Builder) collect(ctx context.Context, r recipe) (map[string]entry, error) {
	files := map[string]entry{}
	var hostPaths []string
	if len(r.packages) > 0 {
		out, err := exec.CommandContext(ctx, "dpkg", append([]string{"-L"}, r.packages...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg -L: %w", err)
		}
		for _, p := range strings.Split(string(out), "\n") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, "/") && !excluded(p, r.exclude) {
				hostPaths = append(hostPaths, p)
			}
		}
	}
	for _, x := range r.extra {
		_ = filepath.Walk(x, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				hostPaths = append(hostPaths, p)
			}
			return nil
		})
	}
	var elfs []string
	for _, p := range hostPaths {
		fi, err := os.Lstat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		addHost(files, p)
		if fi.Mode().IsRegular() && isELF(p) {
			elfs = append(elfs, p)
		}
	}
	if r.busybox {
		addHost(files, "/bin/busybox")
		out, err := exec.CommandContext(ctx, "/bin/busybox", "--list-full").Output()
		if err != nil {
			return nil, fmt.Errorf("busybox --list-full: %w", err)
		}
		for _, a := range strings.Fields(string(out)) {
			p := canonical("/" + a)
			if _, taken := files[p]; !taken {
				files[p] = entry{path: p, f: file{link: "/usr/bin/busybox", mode: 0o777}}
			}
		}
	}
	addClosure(ctx, files, elfs)
	for p, f := range r.files {
		files[p] = entry{path: p, f: f}
	}
	if r.busybox || len(r.packages) > 0 {
		// Debian's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr.
		for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
			files["/"+l] = entry{path: "/" + l, f: file{link: "usr/" + l, mode: 0o777}}
		}
	}
	return files, nil
}

// addTrees adds each tools-cache directory's regular files under its path
// in the image.
func (b *Builder) addTrees(files map[string]entry, trees map[string]string) error {
	for dst, src := range trees {
		root := filepath.Join(b.ToolsDir, src)
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files[path.Join(dst, filepath.ToSlash(rel))] = entry{path: path.Join(dst, filepath.ToSlash(rel)), src: p}
			return nil
		})
		if err != nil {
			return fmt.Errorf("image tree %s: %w", root, err)
		}
	}
	return nil
}

func excluded(p string, extra []string) bool {
	for _, x := range append(append([]string(nil), commonExclude...), extra...) {
		if p == x || strings.HasPrefix(p, x+"/") || strings.HasPrefix(p, x) && strings.HasSuffix(x, "/") {
			return true
		}
		if strings.HasPrefix(filepath.Base(p), filepath.Base(x)) && filepath.Dir(p) == filepath.Dir(x) {
			return true // prefix of a file name, e.g. /usr/bin/wsrep*
		}
	}
	return false
}

// canonical resolves the directory part of p through the host's symlinks
// (merged /usr) so each file lands at its real path.
func canonical(p string) string {
	d, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return p
	}
	return filepath.Join(d, filepath.Base(p))
}

// addHost adds a host file or symlink (and the target chain of a symlink).
func addHost(files map[string]entry, p string) {
	for i := 0; i < 10; i++ {
		cp := canonical(p)
		if _, ok := files[cp]; ok {
			return
		}
		fi, err := os.Lstat(cp)
		if err != nil {
			return
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			files[cp] = entry{path: cp, src: cp}
			return
		}
		target, err := os.Readlink(cp)
		if err != nil {
			return
		}
		files[cp] = entry{path: cp, f: file{link: target, mode: 0o777}}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cp), target)
		}
		p = target
	}
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	return err == nil && string(m[:]) == "\x7fELF"
}

// addClosure adds every shared library the ELF files need, as ldd sees it.
func addClosure(ctx context.Context, files map[string]entry, elfs []string) {
	seen := map[string]bool{}
	for len(elfs) > 0 {
		batch := elfs
		if len(batch) > 50 {
			batch = batch[:50]
		}
		elfs = elfs[len(batch):]
		// ldd exits non-zero when one of the files is not dynamic; the output is still complete.
		out, _ := exec.CommandContext(ctx, "ldd", batch...).Output()
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			var lib string
			if _, after, ok := strings.Cut(line, "=> "); ok {
				lib = strings.Fields(after + " x")[0]
			} else if strings.HasPrefix(line, "/") {
				lib = strings.Fields(line)[0]
			}
			if !strings.HasPrefix(lib, "/") || seen[lib] {
				continue
			}
			seen[lib] = true
			addHost(files, lib)
		}
	}
}

// writeLayer writes an uncompressed tar with parent directories, stable
// order and fixed times so equal inputs give equal digests.
func writeLayer(path string, files map[string]entry) error {
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]file{}
	for p, e := range files {
		if e.f.dir {
			dirs[p] = e.f
		}
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			if _, ok := dirs[d]; !ok {
				if e, ok := files[d]; ok && e.f.dir {
					dirs[d] = e.f
				} else {
					dirs[d] = file{dir: true, mode: 0o755}
				}
			}
		}
	}
	var paths []string
	for p := range dirs {
		paths = append(paths, p)
	}
	for p, e := range files {
		if !e.f.dir {
			if _, isDir := dirs[p]; isDir {
				continue // a link like /bin, replaced by the real directory, is not both
			}
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	for _, p := range paths {
		name := strings.TrimPrefix(p, "/")
		if d, ok := dirs[p]; ok {
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: d.mode, Uid: d.uid, Gid: d.uid, ModTime: mtime}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("layer %s: %w", p, err)
			}
			continue
		}
		e := files[p]
		switch {
		case e.f.link != "":
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: e.f.link, Mode: 0o777, ModTime: mtime}); err != nil {
				return fmt.Errorf("layer %s: %w", p, err)
			}
		case e.src != "":
			if err := copyInto(tw, name, e.src, e.f.mode, mtime); err != nil {
				return err
			}
		default:
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: e.f.mode, Uid: e.f.uid, Gid: e.f.uid, Size: int64(len(e.f.content)), ModTime: mtime}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("layer %s: %w", p, err)
			}
			if _, err := io.Copy(tw, bytes.NewReader([]byte(e.f.content))); err != nil {
				return fmt.Errorf("layer %s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close layer: %w", err)
	}
	return out.Close()
}

func copyInto(tw *tar.Writer, name, src string, mode int64, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	if mode == 0 {
		mode = int64(fi.Mode().Perm())
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: fi.Size(), ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer %s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("layer %s: %w", name, err)
	}
	return nil
}
