package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun/fetch"
)

// fetchCmd writes one component of a version into a directory: the init
// container of a `script` component's Job (see internal/scriptrun).
func fetchCmd(ctx context.Context, args []string, getenv func(string) string, o *out, stderr io.Writer) error {
	f, err := agentproto.ParseFetch(args, stderr)
	if err != nil {
		return err
	}
	c := common{Common: f.Common}
	if err := c.complete(getenv); err != nil {
		return err
	}
	digest, dest := f.Version, f.Dest
	o.line(Line{Type: agentproto.TypeStart, Component: c.Component})
	cl, err := c.client()
	if err != nil {
		return err
	}
	m, dg, err := cl.GetManifest(ctx, c.project, c.name, digest)
	if err != nil {
		return fmt.Errorf("manifest of %s@%s: %w", c.State, digest, err)
	}
	for _, comp := range m.Components {
		if comp.Name != c.Component {
			continue
		}
		s, err := fetch.Component(ctx, cl.Chunks(c.project, c.name), comp, dest)
		if err != nil {
			return fmt.Errorf("fetch %s of %s@%s: %w", c.Component, c.State, dg, err)
		}
		b, _ := json.Marshal(s)
		fmt.Fprintf(stderr, "fetched %s into %s: %s\n", c.Component, dest, b)
		o.line(Line{Type: agentproto.TypeResult, Component: c.Component})
		return nil
	}
	return fmt.Errorf("version %s has no component %q", dg, c.Component)
}
