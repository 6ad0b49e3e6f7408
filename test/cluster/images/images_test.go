package images

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	release "github.com/unikubehq/terraform-provider-unikube/internal/release/images"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestBuild_BusyboxImageIsCachedAndRunnableLayout(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("Debian busybox-static not installed (make tools)")
	}
	b := &Builder{ToolsDir: t.TempDir()}
	ctx := context.Background()
	imgs, err := b.Build(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Build(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Tar != imgs[0].Tar {
		t.Errorf("second build made %s, want the cached %s", again[0].Tar, imgs[0].Tar)
	}
	tag, _ := name.NewTag("localhost/busybox:latest")
	img, err := tarball.ImageFromPath(imgs[0].Tar, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", imgs[0].Tar, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || len(cf.Config.Cmd) == 0 {
		t.Errorf("config: os=%q arch=%q cmd=%v", cf.OS, cf.Architecture, cf.Config.Cmd)
	}
	files := layerFiles(t, img)
	for _, want := range []string{"usr/bin/busybox", "usr/bin/sh", "bin", "etc/passwd", "tmp/"} {
		if !files[want] {
			t.Errorf("layer lacks %s", want)
		}
	}
}

func TestBuild_UnknownImageIsAnError(t *testing.T) {
	b := &Builder{ToolsDir: t.TempDir()}
	if _, err := b.Build(context.Background(), "nginx"); err == nil {
		t.Fatal("Build(nginx) succeeded, want an error naming the known images")
	}
}

func TestBuild_AgentImageIsTheReleaseImage(t *testing.T) {
	if _, err := os.Stat(release.DefaultCABundle); err != nil {
		testenv.Missing(t, "no CA bundle at %s (install ca-certificates)", release.DefaultCABundle)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{ToolsDir: t.TempDir(), RepoRoot: root}
	imgs, err := b.Build(t.Context(), "unikube-agent")
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("localhost/unikube-agent:dev")
	got, err := tarball.ImageFromPath(imgs[0].Tar, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", imgs[0].Tar, err)
	}

	rb := &release.Builder{RepoRoot: root, WorkDir: t.TempDir(),
		Platforms: []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}},
		Meta:      release.Meta{Version: "dev", Created: agentCreated, Source: release.DefaultSource}}
	built, err := rb.Build(t.Context(), "unikube-agent")
	if err != nil {
		t.Fatal(err)
	}
	im, _ := built[0].Index.IndexManifest()
	want, err := built[0].Index.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	gc, _ := got.ConfigName()
	wc, _ := want.ConfigName()
	if gc != wc {
		t.Errorf("harness agent image config %s, release build %s: the tests would not run what users run", gc, wc)
	}
	gl, _ := got.Layers()
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("harness image has %d layers, release image %d", len(gl), len(wl))
	}
	for i := range gl {
		gd, _ := gl[i].DiffID()
		wd, _ := wl[i].DiffID()
		if gd != wd {
			t.Errorf("layer %d: harness %s, release %s", i, gd, wd)
		}
	}
	cf, _ := got.ConfigFile()
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/unikube-agent" {
		t.Errorf("agent config: user %q entrypoint %v", cf.Config.User, cf.Config.Entrypoint)
	}
}
