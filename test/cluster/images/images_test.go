package images

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
