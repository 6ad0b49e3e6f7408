package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun/fetch"
)

// fetchCmd writes one component of a version into a directory: the init
// container of a `script` component's Job (see internal/scriptrun).
func fetchCmd(ctx context.Context, args []string, getenv func(string) string, o *out, stderr io.Writer) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var digest, dest string
	fs.StringVar(&digest, "version", "", "version digest sha256:<hex> (or a tag)")
	fs.StringVar(&dest, "dest", "", "directory to write the component into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.complete(getenv); err != nil {
		return err
	}
	if digest == "" || dest == "" {
		return errors.New("--version and --dest are required")
	}
	o.line(Line{Type: "start", Component: c.component})
	cl, err := c.client()
	if err != nil {
		return err
	}
	m, dg, err := cl.GetManifest(ctx, c.project, c.name, digest)
	if err != nil {
		return fmt.Errorf("manifest of %s@%s: %w", c.state, digest, err)
	}
	for _, comp := range m.Components {
		if comp.Name != c.component {
			continue
		}
		s, err := fetch.Component(ctx, cl.Chunks(c.project, c.name), comp, dest)
		if err != nil {
			return fmt.Errorf("fetch %s of %s@%s: %w", c.component, c.state, dg, err)
		}
		b, _ := json.Marshal(s)
		fmt.Fprintf(stderr, "fetched %s into %s: %s\n", c.component, dest, b)
		o.line(Line{Type: "result", Component: c.component})
		return nil
	}
	return fmt.Errorf("version %s has no component %q", dg, c.component)
}
