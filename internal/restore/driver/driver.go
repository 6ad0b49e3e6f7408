// Package driver defines the one small interface every component kind
// implements for both directions (capture a live source into a stream,
// restore a stream onto a target), plus an explicit registry.
//
// Drivers never see the chunk store: capture writes to an io.Writer that the
// caller chunks, and restore reads through a ChunkSource that verifies every
// chunk before handing out a byte of it.
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Driver captures and restores one component kind.
type Driver interface {
	// Kind is the component kind this driver handles.
	Kind() statepkg.Kind
	// Capture streams the data of src into w and describes what it wrote.
	// It never holds the whole component in memory.
	Capture(ctx context.Context, src Source, w io.Writer, p Progress) (CaptureResult, error)
	// Plan says what Restore would do to target without changing anything.
	Plan(ctx context.Context, c statepkg.Component, t Target) (ComponentPlan, error)
	// Restore puts the component's data onto target, atomically where the
	// service allows it. On error the target keeps its previous data and no
	// staging database/schema/directory is left behind.
	Restore(ctx context.Context, c statepkg.Component, src ChunkSource, t Target, p Progress) (ComponentResult, error)
}

// ChunkSource hands out the verified bytes of one component stream.
type ChunkSource interface {
	// Open streams the whole component from offset 0.
	Open(ctx context.Context) (io.ReadCloser, error)
	// ReadRange writes bytes [off, off+n) of the stream to w, fetching only
	// the chunks that overlap the range.
	ReadRange(ctx context.Context, off, n int64, w io.Writer) error
}

// Source is where capture reads from: a URL (postgres://, mysql://,
// redis://, file:///path) or a local path.
type Source struct {
	URL     string
	Options map[string]string
}

// Target is where a component is restored to, in the same URL forms as
// Source. State and Digest are written into the target's marker.
type Target struct {
	URL     string
	Options map[string]string
	State   string // "project/name"
	Digest  string // manifest digest, "sha256:<hex>"
	// Force re-applies even when the target's marker says it already holds
	// this digest (e.g. to repair data changed behind the marker's back).
	// Drivers then plan a full restore instead of a skip.
	Force bool
}

// Option returns a target option or def when unset.
func (t Target) Option(key, def string) string {
	if v, ok := t.Options[key]; ok && v != "" {
		return v
	}
	return def
}

// Option returns a source option or def when unset.
func (s Source) Option(key, def string) string {
	if v, ok := s.Options[key]; ok && v != "" {
		return v
	}
	return def
}

// CaptureResult describes a captured stream.
type CaptureResult struct {
	Format string
	Meta   map[string]string
	Files  []statepkg.FileEntry // volume file index
}

// Action is what a plan does to one component.
type Action string

// Plan actions.
const (
	ActionCreate      Action = "create"      // target has no data yet
	ActionReplace     Action = "replace"     // target data is replaced as a whole
	ActionSkip        Action = "skip"        // target already holds this digest
	ActionIncremental Action = "incremental" // only some files change
)

// ComponentPlan is what Restore will do to one component.
type ComponentPlan struct {
	Component string        `json:"component"`
	Kind      statepkg.Kind `json:"kind"`
	Target    string        `json:"target"` // URL with the password removed
	Action    Action        `json:"action"`
	Reason    string        `json:"reason,omitempty"`
	Strategy  string        `json:"strategy,omitempty"` // swap, in-place, staging-rename, swapdb
	Atomic    bool          `json:"atomic"`
	Bytes     int64         `json:"bytes"`           // stream bytes to fetch
	Files     int64         `json:"files,omitempty"` // files to write
	Deletes   int64         `json:"deletes,omitempty"`
	Current   string        `json:"current,omitempty"` // digest found in the target's marker
	Warnings  []string      `json:"warnings,omitempty"`
	// Changed names what changed in the target since the apply its marker
	// records (at most MaxChanged entries, e.g. "public.users: 2 updated"),
	// for a target that holds the planned version but was changed behind
	// the marker's back: the action is then a replace and the reason
	// starts with ReasonChanged.
	Changed []string `json:"changed,omitempty"`
}

// ReasonChanged starts the reason of a plan that replaces a target's
// data although its marker says it holds the planned version: the data
// was changed since that apply (e.g. rows edited by hand).
const ReasonChanged = "changed since apply"

// MaxChanged bounds ComponentPlan.Changed, so a plan stays one short line.
const MaxChanged = 10

// Drifted says whether p replaces data changed since the apply its
// target's marker records.
func (p ComponentPlan) Drifted() bool { return strings.HasPrefix(p.Reason, ReasonChanged) }

// ComponentResult is what Restore did.
type ComponentResult struct {
	Component     string        `json:"component"`
	Kind          statepkg.Kind `json:"kind"`
	Action        Action        `json:"action"`
	Strategy      string        `json:"strategy,omitempty"`
	Duration      time.Duration `json:"duration"`
	Bytes         int64         `json:"bytes"`          // stream bytes read
	ChunksFetched int64         `json:"chunksFetched"`  // filled in by the restore core
	FilesWritten  int64         `json:"filesWritten"`   // volume only
	FilesDeleted  int64         `json:"filesDeleted"`   // volume only
	Rows          int64         `json:"rows,omitempty"` // keys for redis
	Previous      string        `json:"previous,omitempty"`
}

// Phases reported in progress events.
const (
	PhasePlan     = "plan"
	PhaseCapture  = "capture"
	PhaseDownload = "download"
	PhaseRestore  = "restore"
	PhaseSwap     = "swap"
	PhaseCleanup  = "cleanup"
	PhaseDone     = "done"
)

// Event is one progress report. Bytes, Files and Rows are increments.
type Event struct {
	Component string
	Phase     string
	Bytes     int64
	Files     int64
	Rows      int64
}

// Progress receives events; a nil Progress drops them. It must be cheap and
// safe for concurrent use.
type Progress func(Event)

// Emit reports e when p is not nil.
func (p Progress) Emit(e Event) {
	if p != nil {
		p(e)
	}
}

// OptStrategy is the one target option every driver accepts.
const OptStrategy = "strategy"

// OptionLister is implemented by drivers that know every target option
// they take: CheckOptions then refuses any other, so a misspelt option
// (db.job=4) fails the plan instead of being ignored.
type OptionLister interface {
	TargetOptions() []string
}

// PodNeeds is implemented by drivers that need options set when they run
// in an agent pod, whose only writable directory is scratch (postgres
// stages its archive there): the agent's contract (internal/agentproto)
// adds them, so no caller knows a driver's needs.
type PodNeeds interface {
	PodOptions(scratch string) map[string]string
}

// CheckOptions returns an error naming the target options d does not
// take, or nil (always nil for a driver that lists none).
func CheckOptions(d Driver, opts map[string]string) error {
	ol, ok := d.(OptionLister)
	if !ok {
		return nil
	}
	known := ol.TargetOptions()
	var bad []string
	for k := range opts {
		// The Terraform resource's and the Helm plugin's strategy is
		// given to every component; drivers without strategies ignore it.
		if k != OptStrategy && !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	sorted := slices.Sorted(slices.Values(known))
	return fmt.Errorf("unknown %s option %s (the %s driver takes: %s)", d.Kind(), strings.Join(quoteAll(bad), ", "), d.Kind(), strings.Join(sorted, ", "))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// Registry maps component kinds to drivers. It is built explicitly by the
// caller; nothing registers itself.
type Registry struct {
	drivers map[statepkg.Kind]Driver
}

// NewRegistry returns a registry holding ds. A later driver for the same
// kind replaces an earlier one.
func NewRegistry(ds ...Driver) *Registry {
	r := &Registry{drivers: map[statepkg.Kind]Driver{}}
	for _, d := range ds {
		r.drivers[d.Kind()] = d
	}
	return r
}

// ErrUnknownKind is returned for a kind no driver handles.
var ErrUnknownKind = errors.New("no driver for component kind")

// Get returns the driver for kind.
func (r *Registry) Get(kind statepkg.Kind) (Driver, error) {
	if r != nil {
		if d, ok := r.drivers[kind]; ok {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownKind, kind, strings.Join(r.kinds(), ", "))
}

func (r *Registry) kinds() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.drivers))
	for k := range r.drivers {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// CountingWriter counts bytes written through it.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(b []byte) (int, error) {
	n, err := c.W.Write(b)
	c.N += int64(n)
	return n, err
}

// ProgressReader reports bytes read from R as events of one component/phase,
// batched so a fast stream does not flood the aggregator.
type ProgressReader struct {
	R         io.Reader
	P         Progress
	Component string
	Phase     string
	N         int64
	pending   int64
}

func (r *ProgressReader) Read(b []byte) (int, error) {
	n, err := r.R.Read(b)
	r.N += int64(n)
	r.pending += int64(n)
	if r.pending >= 1<<20 || (err != nil && r.pending > 0) {
		r.P.Emit(Event{Component: r.Component, Phase: r.Phase, Bytes: r.pending})
		r.pending = 0
	}
	return n, err
}

// Flush reports bytes not yet reported.
func (r *ProgressReader) Flush() {
	if r.pending > 0 {
		r.P.Emit(Event{Component: r.Component, Phase: r.Phase, Bytes: r.pending})
		r.pending = 0
	}
}
