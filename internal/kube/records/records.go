// Package records keeps the history of applies to a namespace as Secrets
// named unikube.state.v1.<release>.v<N> (like Helm's release Secrets),
// labelled owner=unikube-state, name=<release>, status=applied|failed|
// superseded. They give `helm state history`, rollback, and Terraform drift
// detection.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels and values of record Secrets.
const (
	LabelOwner    = "owner"
	Owner         = "unikube-state"
	LabelName     = "name"
	LabelStatus   = "status"
	LabelRevision = "version"
	SecretType    = "unikube.dev/state-record.v1"
	dataKey       = "record"
)

// Statuses of a record.
const (
	StatusApplied    = "applied"
	StatusFailed     = "failed"
	StatusSuperseded = "superseded"
	// StatusUninstalled marks, when read, a record of an earlier install
	// of a Helm release that was uninstalled and installed again: what it
	// says the components held went with the uninstall. It is never
	// written (see MarkUninstalled).
	StatusUninstalled = "uninstalled"
	// StatusUnreadable marks, when read, a record Secret whose data is not
	// a record (damaged or made by hand). It is never written.
	StatusUnreadable = "unreadable"
)

// maxRecordBytes keeps a record well under the 1 MiB Secret limit.
const maxRecordBytes = 512 << 10

// Component is the outcome of one component in a record.
type Component struct {
	Name     string        `json:"name"`
	Kind     string        `json:"kind"`
	Action   string        `json:"action,omitempty"`
	Strategy string        `json:"strategy,omitempty"`
	Duration time.Duration `json:"duration"`
	Bytes    int64         `json:"bytes,omitempty"`
	// ChunksFetched and FilesWritten: what the agent's restore did
	// (files: volumes only).
	ChunksFetched int64  `json:"chunksFetched,omitempty"`
	FilesWritten  int64  `json:"filesWritten,omitempty"`
	Error         string `json:"error,omitempty"`
	// Unchanged says a failed component's agent stopped before it changed
	// its target.
	Unchanged bool     `json:"unchanged,omitempty"`
	LogTail   []string `json:"logTail,omitempty"`
}

// Record is one apply to a namespace.
type Record struct {
	Release  string        `json:"release"`
	Revision int           `json:"revision"`
	Status   string        `json:"status"`
	State    string        `json:"state"` // project/name
	Digest   string        `json:"digest"`
	Tag      string        `json:"tag,omitempty"`
	Actor    string        `json:"actor,omitempty"`
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
	// RollbackOf is the revision a rollback re-applied (0: not a rollback).
	RollbackOf int         `json:"rollbackOf,omitempty"`
	Components []Component `json:"components"`
}

// SecretName is the name of revision n of release's records.
func SecretName(release string, n int) string {
	return fmt.Sprintf("unikube.state.v1.%s.v%d", release, n)
}

// List returns the records of release in ns, oldest first.
func List(ctx context.Context, cs kubernetes.Interface, ns, release string) ([]Record, error) {
	l, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelOwner + "=" + Owner + "," + LabelName + "=" + release})
	if err != nil {
		return nil, fmt.Errorf("list records of %s in %s: %w", release, ns, err)
	}
	out := make([]Record, 0, len(l.Items))
	for _, s := range l.Items {
		var r Record
		if err := json.Unmarshal(s.Data[dataKey], &r); err != nil {
			// A damaged (or hand-made) Secret must not stop every later
			// apply from recording itself, nor hide the history: it is
			// listed as unreadable, which nothing rolls back to.
			r = Record{Status: StatusUnreadable, Error: fmt.Sprintf("record %s cannot be read: %v", s.Name, err), Components: []Component{}}
		} else {
			r.Status = s.Labels[LabelStatus] // the label is the source of truth
		}
		// The Secret's labels, not its data, say whose record it is:
		// Write marks records superseded by these, and must never touch
		// another release's.
		r.Release = release
		if n, err := strconv.Atoi(s.Labels[LabelRevision]); err == nil {
			r.Revision = n
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

// Last returns the newest record of release with status (any if ""), or nil.
func Last(ctx context.Context, cs kubernetes.Interface, ns, release, status string) (*Record, error) {
	rs, err := List(ctx, cs, ns, release)
	if err != nil {
		return nil, err
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if status == "" || rs[i].Status == status {
			return &rs[i], nil
		}
	}
	return nil, nil
}

// Write stores r as the next revision of its release and, when r is
// applied, marks the earlier applied records superseded. It fills in
// r.Revision.
func Write(ctx context.Context, cs kubernetes.Interface, ns string, r *Record) error {
	existing, err := List(ctx, cs, ns, r.Release)
	if err != nil {
		return err
	}
	next := 1
	if len(existing) > 0 {
		next = existing[len(existing)-1].Revision + 1
	}
	shrink(r)
	for attempt := 0; attempt < 5; attempt++ {
		r.Revision = next
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: SecretName(r.Release, next), Namespace: ns, Labels: map[string]string{
				LabelOwner: Owner, LabelName: r.Release, LabelStatus: r.Status, LabelRevision: strconv.Itoa(next),
				"app.kubernetes.io/managed-by": "unikube-state",
			}},
			Type: SecretType,
			Data: map[string][]byte{dataKey: b},
		}
		_, err = cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			next++ // a concurrent apply took this revision
			continue
		}
		if err != nil {
			return fmt.Errorf("write record %s: %w", s.Name, err)
		}
		if r.Status != StatusApplied {
			return nil
		}
		for _, e := range existing {
			if e.Status != StatusApplied {
				continue
			}
			p := []byte(`{"metadata":{"labels":{"` + LabelStatus + `":"` + StatusSuperseded + `"}}}`)
			if _, err := cs.CoreV1().Secrets(ns).Patch(ctx, SecretName(e.Release, e.Revision), types.MergePatchType, p, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("mark record v%d superseded: %w", e.Revision, err)
			}
		}
		return nil
	}
	return fmt.Errorf("write record of %s: revision kept being taken by concurrent applies", r.Release)
}

// shrink keeps a record under maxRecordBytes by cutting log tails, then
// error texts.
func shrink(r *Record) {
	size := func() int { b, _ := json.Marshal(r); return len(b) }
	for size() > maxRecordBytes {
		cut := false
		for i := range r.Components {
			if n := len(r.Components[i].LogTail); n > 5 {
				r.Components[i].LogTail = r.Components[i].LogTail[n-n/2:]
				cut = true
			}
		}
		if !cut {
			for i := range r.Components {
				if len(r.Components[i].Error) > 4096 {
					r.Components[i].Error = r.Components[i].Error[:4096] + "...(cut)"
					cut = true
				}
			}
			if len(r.Error) > 4096 {
				r.Error = r.Error[:4096] + "...(cut)"
				cut = true
			}
		}
		if !cut {
			for i := range r.Components {
				r.Components[i].LogTail = nil
			}
			return
		}
	}
}

// ErrNoPrevious says a release has no earlier successful apply of another
// version to roll back to.
var ErrNoPrevious = errors.New("no earlier successful apply of another version to roll back to")

// RevisionError says a chosen revision cannot be rolled back to.
type RevisionError struct {
	Revision int
	Failed   bool // the revision exists but its apply failed
}

func (e *RevisionError) Error() string {
	if e.Failed {
		return fmt.Sprintf("revision %d failed; pick one that was applied", e.Revision)
	}
	return fmt.Sprintf("no revision %d", e.Revision)
}

// succeeded says whether r's apply went through (it may since have been
// superseded).
func succeeded(r Record) bool { return r.Status == StatusApplied || r.Status == StatusSuperseded }

// RollbackTarget is the one rollback rule of every front end. With
// revision > 0 it is that revision (refused when it failed). Otherwise it
// is the version the release held before current: the newest successful
// record of another digest older than the newest successful record of
// current. current "" means the digest of the newest applied record.
// Re-applies of the current version and failed applies are passed over;
// without a record of current there is nothing to roll back from.
func RollbackTarget(rs []Record, current string, revision int) (*Record, error) {
	if revision > 0 {
		for i := range rs {
			if rs[i].Revision == revision {
				if !succeeded(rs[i]) {
					return nil, &RevisionError{Revision: revision, Failed: true}
				}
				return &rs[i], nil
			}
		}
		return nil, &RevisionError{Revision: revision}
	}
	if current == "" {
		for i := len(rs) - 1; i >= 0; i-- {
			if rs[i].Status == StatusApplied {
				current = rs[i].Digest
				break
			}
		}
	}
	i := len(rs) - 1
	for i >= 0 && (rs[i].Digest != current || !succeeded(rs[i])) {
		i--
	}
	if current == "" || i < 0 {
		return nil, ErrNoPrevious
	}
	for j := i - 1; j >= 0; j-- {
		if rs[j].Digest != current && succeeded(rs[j]) {
			return &rs[j], nil
		}
	}
	return nil, ErrNoPrevious
}

// MarkUninstalled returns rs with the records written before installed
// (when the release's current install was first deployed) marked
// StatusUninstalled: a reinstalled release starts with fresh data, so
// those records no longer say what its components hold. The records are
// kept, not deleted: they are the history of who applied what, and a
// reader (a plan, `helm state history`) must not need the right to
// delete them.
func MarkUninstalled(rs []Record, installed time.Time) []Record {
	if installed.IsZero() {
		return rs
	}
	out := slices.Clone(rs)
	for i := range out {
		if out[i].Time.Before(installed) {
			out[i].Status = StatusUninstalled
		}
	}
	return out
}

// Holding returns, per component, the newest record whose apply left that
// component holding the record's version: the component is listed without
// an error (restored, or skipped because it already held it). A failed
// apply counts for the components that went through: swaps are atomic per
// component.
func Holding(rs []Record) map[string]*Record {
	out := map[string]*Record{}
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Status == StatusUninstalled {
			continue
		}
		for _, c := range rs[i].Components {
			if _, seen := out[c.Name]; seen {
				continue
			}
			if c.Error == "" {
				out[c.Name] = &rs[i]
			} else {
				out[c.Name] = nil // newest says it failed: holds what it held before, unknown here
			}
		}
	}
	for k, v := range out {
		if v == nil {
			delete(out, k)
		}
	}
	return out
}
