// Package capture is the mirror of restore: it dumps live sources and local
// files through their drivers into a package (a manifest plus chunks in a
// store), streaming each source straight into the chunker, so no component
// is ever held whole in memory.
package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Source is one component to capture.
type Source struct {
	Name    string            // component name, a DNS label
	Kind    statepkg.Kind     // empty: guessed from the URL or file (driver.KindOf)
	URL     string            // postgres://, mysql://, redis://, file:///path or a local path
	Options map[string]string // driver options (pg_bin, tmpdir, db, ...)
}

// Spec describes the version being made.
type Spec struct {
	State    string // "project/name"
	Revision string
	Message  string
	// Concurrency is how many sources are captured at once (default 2).
	Concurrency int
	// Write tunes chunking and compression.
	Write statepkg.WriteOptions
	// Registry defaults to restore.DefaultRegistry().
	Registry *driver.Registry
	// Progress, if set, receives driver events (captured bytes, rows,
	// files); it is called from several goroutines.
	Progress func(driver.Event)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ComponentStats says what capturing one source cost.
type ComponentStats struct {
	Name     string              `json:"name"`
	Duration time.Duration       `json:"duration"`
	Write    statepkg.WriteStats `json:"write"`
}

// Stats of a capture.
type Stats struct {
	Duration   time.Duration    `json:"duration"`
	Components []ComponentStats `json:"components"`
}

// Capture dumps every source into store and returns the manifest of the new
// version (not yet committed anywhere: push it with the platform client).
func Capture(ctx context.Context, sources []Source, store statepkg.ChunkStore, spec Spec) (*statepkg.Manifest, Stats, error) {
	now := spec.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	reg := spec.Registry
	if reg == nil {
		reg = restore.DefaultRegistry()
	}
	if len(sources) == 0 {
		return nil, Stats{}, errors.New("capture: no sources")
	}
	seen := map[string]bool{}
	for i, s := range sources {
		if err := statepkg.ValidateName(s.Name); err != nil {
			return nil, Stats{}, fmt.Errorf("capture: source %d: component name: %w", i, err)
		}
		if seen[s.Name] {
			return nil, Stats{}, fmt.Errorf("capture: component %q named twice", s.Name)
		}
		seen[s.Name] = true
	}
	conc := spec.Concurrency
	if conc <= 0 {
		conc = 2
	}
	wopts := spec.Write
	if wopts.Concurrency <= 0 {
		// Sources run side by side; share the CPUs between them.
		wopts.Concurrency = max(runtime.GOMAXPROCS(0)/min(conc, len(sources)), 1)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: spec.State, Revision: spec.Revision, Message: spec.Message,
		CreatedAt: start.UTC().Truncate(time.Millisecond), Components: make([]statepkg.Component, len(sources))}
	stats := Stats{Components: make([]ComponentStats, len(sources))}
	var progressMu sync.Mutex
	progress := driver.Progress(nil)
	if spec.Progress != nil {
		progress = func(e driver.Event) {
			progressMu.Lock()
			defer progressMu.Unlock()
			spec.Progress(e)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, s := range sources {
		g.Go(func() error {
			t0 := now()
			c, ws, err := captureOne(gctx, reg, s, store, wopts, progress)
			if err != nil {
				return fmt.Errorf("capture %s: %w", s.Name, err)
			}
			m.Components[i] = c
			stats.Components[i] = ComponentStats{Name: s.Name, Duration: now().Sub(t0), Write: ws}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, stats, err
	}
	stats.Duration = now().Sub(start)
	if err := m.Validate(); err != nil {
		return nil, stats, fmt.Errorf("capture: %w", err)
	}
	return m, stats, nil
}

// captureOne streams one source through its driver into WriteComponent.
func captureOne(ctx context.Context, reg *driver.Registry, s Source, store statepkg.ChunkStore, wopts statepkg.WriteOptions, p driver.Progress) (statepkg.Component, statepkg.WriteStats, error) {
	kind := s.Kind
	if kind == "" {
		k, err := driver.KindOf(s.URL)
		if err != nil {
			return statepkg.Component{}, statepkg.WriteStats{}, err
		}
		kind = k
	}
	d, err := reg.Get(kind)
	if err != nil {
		return statepkg.Component{}, statepkg.WriteStats{}, err
	}
	opts := map[string]string{"component": s.Name}
	for k, v := range s.Options {
		opts[k] = v
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type captured struct {
		res driver.CaptureResult
		err error
	}
	done := make(chan captured, 1)
	// Drivers whose streams have records (the volume driver's tar entries)
	// mark where each starts, and the chunker prefers to cut there.
	cuts := statepkg.NewCuts()
	wopts.Cuts = cuts
	go func() {
		res, err := d.Capture(ctx, driver.Source{URL: s.URL, Options: opts}, cutWriter{pw, cuts}, p)
		pw.CloseWithError(err)
		done <- captured{res, err}
	}()
	c, ws, werr := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: s.Name, Kind: kind}, pr, wopts)
	if werr != nil {
		// Unblock the driver if it is still writing.
		pr.CloseWithError(werr)
		cancel()
	}
	got := <-done
	if got.err != nil {
		return c, ws, got.err
	}
	if werr != nil {
		return c, ws, werr
	}
	c.Format, c.Meta, c.Files = got.res.Format, got.res.Meta, got.res.Files
	if err := c.Validate(); err != nil {
		return c, ws, err
	}
	return c, ws, nil
}

// cutWriter is the stream writer handed to a driver: the pipe into the
// chunker, plus statepkg.CutMarker for the record boundaries.
type cutWriter struct {
	*io.PipeWriter
	cuts *statepkg.Cuts
}

func (w cutWriter) MarkCut(off int64, key string) { w.cuts.MarkCut(off, key) }
