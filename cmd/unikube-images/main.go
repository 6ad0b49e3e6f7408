// Command unikube-images builds and pushes the release images of
// unikube-agent and unikube-platform without Docker (make images, make
// push-images):
//
//	unikube-images build [-out dist/images] [-version V] [-platforms linux/amd64,linux/arm64] [NAME...]
//	unikube-images push -registry HOST[:PORT]/PATH [-from dist/images] [-insecure] [NAME...]
//
// build writes one OCI image layout per image under -out; push uploads them
// as REGISTRY/NAME:VERSION. Credentials for push come from
// UNIKUBE_REGISTRY_USER and UNIKUBE_REGISTRY_PASSWORD, else the Docker
// config file, else none. The version, revision and creation time default
// to `git describe --tags --always --dirty`, HEAD and SOURCE_DATE_EPOCH (or
// the commit time), so two builds of one commit give the same digests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/unikubehq/terraform-provider-unikube/internal/release/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "unikube-images:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: unikube-images build|push [flags] [NAME...]")
		return errors.New("no command: want build or push")
	}
	switch args[0] {
	case "build":
		return build(ctx, args[1:], getenv, stdout, stderr)
	case "push":
		return push(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: want build or push", args[0])
}

func build(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("unikube-images build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist/images", "directory of the OCI image layouts (one per image)")
	root := fs.String("repo", ".", "module root to build from")
	version := fs.String("version", "", "version baked into the binaries, label and tag (default: git describe --tags --always --dirty)")
	revision := fs.String("revision", "", "commit of the source (default: git rev-parse HEAD)")
	source := fs.String("source", images.DefaultSource, "source repository URL for the org.opencontainers.image.source label")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	ca := fs.String("ca-bundle", images.DefaultCABundle, "PEM bundle of CA certificates copied into the images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ps, err := images.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	for _, n := range fs.Args() {
		if _, err := images.Lookup(n); err != nil {
			return err
		}
	}
	meta, err := images.MetaFromGit(ctx, *root, getenv)
	if err != nil && (*version == "" || *revision == "") {
		return err
	}
	if err != nil { // outside git, with version and revision given: SOURCE_DATE_EPOCH is then required
		if meta.Created, err = images.ParseEpoch(getenv("SOURCE_DATE_EPOCH")); err != nil {
			return fmt.Errorf("outside a git checkout: %w", err)
		}
	}
	if *version != "" {
		meta.Version = *version
	}
	if *revision != "" {
		meta.Revision = *revision
	}
	meta.Source = *source
	log := slog.New(slog.NewTextHandler(stderr, nil))
	b := &images.Builder{RepoRoot: *root, CABundle: *ca, Platforms: ps, Meta: meta, Log: log}
	built, err := b.Build(ctx, fs.Args()...)
	if err != nil {
		return err
	}
	if err := images.WriteLayouts(*out, meta.Version, built); err != nil {
		return err
	}
	for _, img := range built {
		d, err := img.Index.Digest()
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
		sizes, err := images.Sizes(img.Index)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s:%s %s in %s/%s\n", img.Name, meta.Version, d, *out, img.Name)
		for _, s := range sizes {
			fmt.Fprintf(stdout, "  %-12s %6.1f MiB compressed, %6.1f MiB unpacked\n", s.Platform.String(), mib(s.Compressed), mib(s.Uncompressed))
		}
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func push(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("unikube-images push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	registry := fs.String("registry", getenv("REGISTRY"), "HOST[:PORT][/PATH] to push to, e.g. ghcr.io/acme (REGISTRY)")
	from := fs.String("from", "dist/images", "directory of the OCI image layouts written by build")
	tag := fs.String("tag", "", "tag to push (default: the version the layouts were built with)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to a registry that is not on loopback")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *registry == "" {
		return errors.New("no registry: give -registry HOST[:PORT]/PATH (make push-images REGISTRY=...)")
	}
	names := fs.Args()
	if len(names) == 0 {
		names = images.Names()
	}
	creds, err := images.CredentialsFromEnv(getenv)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := images.Lookup(n); err != nil {
			return err
		}
		idx, version, err := images.ReadLayout(*from, n)
		if err != nil {
			return err
		}
		t := *tag
		if t == "" {
			t = version
		}
		ref, err := images.Reference(*registry, n, t, *insecure)
		if err != nil {
			return err
		}
		if err := images.Push(ctx, idx, ref, images.PushOptions{Credentials: creds}); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", ref, d)
	}
	return nil
}
