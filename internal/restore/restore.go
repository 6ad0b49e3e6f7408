// Package restore is the restore core: Plan says what applying a version to
// a set of targets would do, Apply does it, restoring components
// concurrently (bounded) through their drivers, aggregating progress in one
// goroutine, and collecting a result per component.
package restore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/mysql"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/redis"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/volume"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// DefaultRegistry returns a registry with every driver of this build.
func DefaultRegistry() *driver.Registry {
	return driver.NewRegistry(postgres.New(), mysql.New(), redis.New(), volume.New(), opensearch.New())
}

// Targets maps component names to where they are restored.
type Targets map[string]driver.Target

// PlanOptions tune Plan. Zero values mean defaults.
type PlanOptions struct {
	Registry *driver.Registry // default DefaultRegistry()
	// SkipUnmapped leaves components without a target out of the plan
	// instead of failing.
	SkipUnmapped bool
	// Force re-applies components whose target marker already names this
	// version, instead of skipping them.
	Force bool
}

// ComponentPlan is the plan of one component plus what Apply needs to carry
// it out.
type ComponentPlan struct {
	driver.ComponentPlan
	component statepkg.Component
	target    driver.Target
	driver    driver.Driver
}

// ApplyPlan is what Apply will do (the result of Plan). It holds the store
// and drivers it was made with.
type ApplyPlan struct {
	State      string          `json:"state,omitempty"`
	Digest     string          `json:"digest"`
	Components []ComponentPlan `json:"components"`
	Skipped    []string        `json:"skipped,omitempty"` // components without a target
	store      statepkg.ChunkStore
}

// Changes reports whether applying the plan changes anything.
func (p *ApplyPlan) Changes() bool {
	for _, c := range p.Components {
		if c.Action != driver.ActionSkip {
			return true
		}
	}
	return false
}

// Plan works out, without changing anything, what applying manifest m
// (whose digest is digest) to targets would do.
func Plan(ctx context.Context, m *statepkg.Manifest, digest string, targets Targets, store statepkg.ChunkStore, opts PlanOptions) (*ApplyPlan, error) {
	if m == nil {
		return nil, errors.New("plan: no manifest")
	}
	reg := opts.Registry
	if reg == nil {
		reg = DefaultRegistry()
	}
	p := &ApplyPlan{State: m.State, Digest: digest, store: store}
	known := map[string]bool{}
	for _, c := range m.Components {
		known[c.Name] = true
		t, ok := targets[c.Name]
		if !ok {
			if opts.SkipUnmapped {
				p.Skipped = append(p.Skipped, c.Name)
				continue
			}
			return nil, fmt.Errorf("plan %s: no target for component %q (%s); map it or leave it out explicitly", m.State, c.Name, c.Kind)
		}
		d, err := reg.Get(c.Kind)
		if err != nil {
			return nil, fmt.Errorf("plan %s: component %q: %w", m.State, c.Name, err)
		}
		if err := driver.CheckOptions(d, t.Options); err != nil {
			return nil, fmt.Errorf("plan %s: component %q: %w", m.State, c.Name, err)
		}
		t.State, t.Digest = m.State, digest
		t.Force = t.Force || opts.Force
		cp, err := d.Plan(ctx, c, t)
		if err != nil {
			return nil, fmt.Errorf("plan %s: component %q on %s: %w", m.State, c.Name, driver.Redact(t.URL), err)
		}
		p.Components = append(p.Components, ComponentPlan{ComponentPlan: cp, component: c, target: t, driver: d})
	}
	var unknown []string
	for name := range targets {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("plan %s: targets name components the version does not have: %v", m.State, unknown)
	}
	return p, nil
}

// ApplyOptions tune Apply. Zero values mean defaults.
type ApplyOptions struct {
	// Concurrency is how many components are restored at once (default 2).
	Concurrency int
	// ReadConcurrency is how many chunks each component fetches ahead
	// (default GOMAXPROCS, at least 2).
	ReadConcurrency int
	// Progress receives aggregated snapshots every Interval and a final one.
	Progress func(Event)
	// Interval between progress snapshots (default 1s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ComponentProgress is the progress of one component so far.
type ComponentProgress struct {
	Component  string `json:"component"`
	Phase      string `json:"phase"`
	Bytes      int64  `json:"bytes"`
	TotalBytes int64  `json:"totalBytes"`
	Files      int64  `json:"files"`
	Rows       int64  `json:"rows"`
	Done       bool   `json:"done"`
	Error      string `json:"error,omitempty"`
}

// Event is a progress snapshot of the whole apply.
type Event struct {
	Time       time.Time           `json:"time"`
	Elapsed    time.Duration       `json:"elapsed"`
	Components []ComponentProgress `json:"components"`
	Final      bool                `json:"final"`
}

// ComponentResult is the outcome of one component.
type ComponentResult struct {
	driver.ComponentResult
	Error string `json:"error,omitempty"`
}

// Result is the outcome of an apply, for records and front ends.
type Result struct {
	State      string            `json:"state,omitempty"`
	Digest     string            `json:"digest"`
	StartedAt  time.Time         `json:"startedAt"`
	Duration   time.Duration     `json:"duration"`
	Components []ComponentResult `json:"components"`
}

// countingStore counts the chunks one component fetches.
type countingStore struct {
	statepkg.ChunkStore
	n atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, d string) ([]byte, error) {
	b, err := s.ChunkStore.Get(ctx, d)
	if err == nil {
		s.n.Add(1)
	}
	return b, err
}

// GetInto keeps the store's statepkg.ChunkReaderInto visible through the
// counting wrapper.
func (s *countingStore) GetInto(ctx context.Context, d string, buf []byte) ([]byte, error) {
	r, ok := s.ChunkStore.(statepkg.ChunkReaderInto)
	if !ok {
		return s.Get(ctx, d)
	}
	b, err := r.GetInto(ctx, d, buf)
	if err == nil {
		s.n.Add(1)
	}
	return b, err
}

// countingBatchStore keeps the store's statepkg.ChunkBatchGetter visible
// through the counting wrapper: the platform client fetches runs of chunks
// with one request, far faster than a request per chunk.
type countingBatchStore struct{ *countingStore }

func (s countingBatchStore) GetBatch(ctx context.Context, digests []string, fn func(int, []byte) error) error {
	bg, _ := s.ChunkStore.(statepkg.ChunkBatchGetter) // checked when wrapped
	return bg.GetBatch(ctx, digests, func(i int, b []byte) error {
		s.n.Add(1)
		return fn(i, b)
	})
}

type progressMsg struct {
	ev    driver.Event
	done  bool
	err   error
	index int
}

// Apply carries out a plan. Components run concurrently up to
// opts.Concurrency; the first failure cancels the others, each of which
// then leaves its target as it was. The result lists every component,
// including failed and cancelled ones.
func Apply(ctx context.Context, p *ApplyPlan, opts ApplyOptions) (*Result, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 2
	}
	readConc := opts.ReadConcurrency
	if readConc <= 0 {
		readConc = max(runtime.GOMAXPROCS(0), 2)
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	start := now()
	res := &Result{State: p.State, Digest: p.Digest, StartedAt: start, Components: make([]ComponentResult, len(p.Components))}

	// One goroutine owns the progress table and reports on a ticker.
	msgs := make(chan progressMsg, 1024)
	aggDone := make(chan struct{})
	index := map[string]int{}
	table := make([]ComponentProgress, len(p.Components))
	for i, c := range p.Components {
		index[c.Component] = i
		table[i] = ComponentProgress{Component: c.Component, Phase: "pending", TotalBytes: c.Bytes}
	}
	go func() {
		defer close(aggDone)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		snapshot := func(final bool) {
			if opts.Progress == nil {
				return
			}
			cp := append([]ComponentProgress(nil), table...)
			t := now()
			opts.Progress(Event{Time: t, Elapsed: t.Sub(start), Components: cp, Final: final})
		}
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					snapshot(true)
					return
				}
				row := &table[m.index]
				if m.ev.Phase != "" {
					row.Phase = m.ev.Phase
				}
				row.Bytes += m.ev.Bytes
				// The planned size is an estimate (e.g. a dump's size, not
				// what loading it writes): a total below the bytes done
				// grows, so no snapshot says more is done than there is.
				row.TotalBytes = max(row.TotalBytes, row.Bytes)
				row.Files += m.ev.Files
				row.Rows += m.ev.Rows
				if m.done {
					row.Done = true
					if m.err != nil {
						row.Error = m.err.Error()
					}
				}
			case <-tick.C:
				snapshot(false)
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, cp := range p.Components {
		g.Go(func() error {
			report := func(ev driver.Event) {
				msgs <- progressMsg{ev: ev, index: i}
			}
			counted := &countingStore{ChunkStore: p.store}
			var store statepkg.ChunkStore = counted
			if _, ok := p.store.(statepkg.ChunkBatchGetter); ok {
				store = countingBatchStore{counted}
			}
			src := driver.StoreSource{Store: store, Component: cp.component, Options: statepkg.ReadOptions{Concurrency: readConc}}
			var r driver.ComponentResult
			err := gctx.Err()
			if err == nil {
				r, err = cp.driver.Restore(gctx, cp.component, src, cp.target, report)
			} else {
				err = fmt.Errorf("restore %s: not started: %w", cp.Component, err)
			}
			r.Component, r.Kind = cp.Component, cp.Kind
			r.ChunksFetched = counted.n.Load()
			cr := ComponentResult{ComponentResult: r}
			if err != nil {
				cr.Error = err.Error()
			}
			res.Components[i] = cr
			msgs <- progressMsg{index: i, done: true, err: err, ev: driver.Event{Phase: phaseOf(err)}}
			return err
		})
	}
	err := g.Wait()
	close(msgs)
	<-aggDone
	res.Duration = now().Sub(start)
	if err != nil {
		return res, fmt.Errorf("apply %s@%s: %w", p.State, short(p.Digest), err)
	}
	return res, nil
}

func phaseOf(err error) string {
	if err != nil {
		return "failed"
	}
	return driver.PhaseDone
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
