package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// Unchanged is the phrase every refusal carries: an apply that stopped
// before it quiesced or restored anything says so.
const Unchanged = "nothing was changed"

// RefusedError says an apply stopped before it changed anything (no
// workload quiesced, no data restored). Record is the failed record it
// left, when it could write one.
type RefusedError struct {
	Err    error
	Record *records.Record
}

func (e *RefusedError) Error() string {
	msg := e.Err.Error()
	if !strings.Contains(msg, Unchanged) {
		msg += " (" + Unchanged + ")"
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return e.Err }

// CheckRights is the permission preflight of an apply and of its plan:
// it runs before anything is read, so a caller who may not do the
// operation hears every right it lacks (rbac.MissingError) instead of the
// first "forbidden" of whatever it read first.
func CheckRights(ctx context.Context, o Options, verb string) error {
	if o.SkipRBACCheck {
		return nil
	}
	want, err := rbac.Needed(applyOperations(o)...)
	if err != nil {
		return err
	}
	if err := rbac.Check(ctx, o.Client, o.Namespace, want); err != nil {
		return fmt.Errorf("%s %s (%s): %w", verb, o.Ref.StateName(), Unchanged, err)
	}
	return nil
}

// progress is what an apply got to: whether it began changing things and
// which version it resolved, for the record of a refusal.
type progress struct {
	changing    bool
	quiesced    bool
	digest, tag string
}

// unchanged says whether a failed apply's record shows nothing changed:
// every component failed before it changed its target, or was skipped.
func unchanged(rec *records.Record) bool {
	failed := false
	for _, c := range rec.Components {
		switch {
		case c.Error != "" && c.Unchanged:
			failed = true
		case c.Error == "" && c.Action == string(driver.ActionSkip):
		default:
			return false
		}
	}
	return failed
}

// failedRecord leaves a failed record of an apply that stopped before it
// wrote one of its own (refused, or its quiesce failed), with err as its
// reason, so `helm state history` and Terraform's refresh show the
// attempt. It is best effort (nil when not written): a caller refused
// for lacking rights may not write Secrets either, and the error is what
// the user needs to read.
func failedRecord(ctx context.Context, o Options, at progress, err error) *records.Record {
	if at.digest == "" {
		at.digest = o.Ref.Digest
	}
	if o.Release == "" || at.digest == "" {
		return nil // no version was resolved: nothing to record against
	}
	rec := &records.Record{Release: o.Release, State: o.Ref.StateName(), Digest: at.digest, Tag: at.tag, Actor: o.Actor,
		Time: time.Now().UTC(), Status: records.StatusFailed, Error: err.Error(), RollbackOf: o.RollbackOf, Components: []records.Component{}}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if werr := records.Write(wctx, o.Client, o.Namespace, rec); werr != nil {
		if o.Logger != nil {
			o.Logger.Warn("could not record the failed apply", "error", werr)
		}
		return nil
	}
	return rec
}
