package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/images"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestBuildThenPush_LikeMakeImagesAndPushImages runs the two commands the
// Makefile runs: build writes the layout, push sends it to a real registry
// with basic auth from the environment as REGISTRY/NAME:VERSION.
func TestBuildThenPush_LikeMakeImagesAndPushImages(t *testing.T) {
	if _, err := os.Stat(images.DefaultCABundle); err != nil {
		testenv.Missing(t, "no CA bundle at %s (install ca-certificates)", images.DefaultCABundle)
	}
	reg := testenv.StartRegistry(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "dist", "images")
	vars := map[string]string{
		"SOURCE_DATE_EPOCH":        "1700000000",
		images.EnvRegistryUser:     reg.User,
		images.EnvRegistryPassword: reg.Password,
	}
	getenv := func(k string) string { return vars[k] }
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"build", "-repo", root, "-out", out, "-version", "v9.9.9-cmdtest",
		"-revision", "feedface", "-platforms", "linux/amd64", "unikube-agent"}, getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "unikube-agent:v9.9.9-cmdtest sha256:") || !strings.Contains(stdout.String(), "MiB compressed") {
		t.Errorf("build output does not name the image, digest and size:\n%s", stdout.String())
	}

	stdout.Reset()
	if err := run(t.Context(), []string{"push", "-registry", reg.Host + "/acme", "-from", out, "unikube-agent"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("push: %v\n%s", err, stderr.String())
	}
	ref, err := name.ParseReference(reg.Host + "/acme/unikube-agent:v9.9.9-cmdtest")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "pushed "+ref.String()+"@sha256:") {
		t.Errorf("push output %q does not name %s", stdout.String(), ref)
	}
	img, err := remote.Image(ref, remote.WithContext(t.Context()),
		remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[images.LabelVersion] != "v9.9.9-cmdtest" || cf.Config.User != "65532:65532" {
		t.Errorf("pulled config: user %q, labels %v", cf.Config.User, cf.Config.Labels)
	}

	vars[images.EnvRegistryPassword] = "wrong"
	err = run(t.Context(), []string{"push", "-registry", reg.Host + "/acme", "-from", out, "unikube-agent"}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("push with a wrong password: %v, want the registry's refusal", err)
	}
}

func TestPush_WithoutRegistryOrLayoutSaysWhatToDo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	err := run(t.Context(), []string{"push", "-from", t.TempDir()}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "REGISTRY") {
		t.Errorf("push without a registry: %v, want a hint to set REGISTRY", err)
	}
	err = run(t.Context(), []string{"push", "-registry", "127.0.0.1:1/x", "-from", t.TempDir()}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "make images") {
		t.Errorf("push from an empty directory: %v, want a hint to run make images", err)
	}
	err = run(t.Context(), []string{"push", "-registry", "127.0.0.1:1/x", "-from", t.TempDir(), "nginx"}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "unknown image") {
		t.Errorf("push nginx: %v, want unknown image", err)
	}
}
