//go:build linux || darwin

package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// diff is what an apply must change in a target.
type diff struct {
	write   []int // regular files and symlinks, created in staging then renamed
	dirs    []int // directories missing from the target
	hard    []int // hardlinks to (re)create
	meta    []int // entries whose content is right but mode/owner/mtime are not
	deletes []string
	bytes   int64
	marker  *Marker
	empty   bool // the target held nothing

	pendingHard []pendingHard
}

type pendingHard struct {
	i   int
	ino uint64
	reg bool
}

func (d *diff) changes() int {
	return len(d.write) + len(d.dirs) + len(d.hard) + len(d.meta) + len(d.deletes)
}

func targetDir(t driver.Target) (string, error) {
	p, ok := driver.LocalPath(t.URL)
	if !ok || p == "" {
		return "", fmt.Errorf("volume target must be a directory path or file:// URL, got %s", driver.Redact(t.URL))
	}
	return p, nil
}

// Plan implements driver.Driver.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	pl := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: driver.Redact(t.URL), Strategy: "staging-rename", Atomic: false}
	if err := validateIndex(c); err != nil {
		return pl, err
	}
	o, err := parseOptions(t)
	if err != nil {
		return pl, err
	}
	dir, err := targetDir(t)
	if err != nil {
		return pl, err
	}
	var df diff
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		df = fullDiff(c)
		// Only the index check is kept for Restore: it diffs whatever
		// the directory holds by then.
		d.remember(dir, c, o, diff{}, false)
	} else {
		root, err := os.OpenRoot(dir)
		if err != nil {
			return pl, fmt.Errorf("open target %s: %w", dir, err)
		}
		defer root.Close()
		if df, err = computeDiff(ctx, root, c, o); err != nil {
			return pl, err
		}
		d.remember(dir, c, o, df, true)
	}
	fillPlan(&pl, c, df, o)
	return pl, nil
}

// plannedFor is how long after a Plan its diff is reused by a Restore.
const plannedFor = 10 * time.Second

type plannedDiff struct {
	key    string
	at     time.Time
	df     diff
	marker Marker // zero when the target had none
	// files is the index Plan validated: the same entries handed to
	// Restore (same backing array and length) need no second check.
	files  *statepkg.FileEntry
	nfiles int
	// reusable: df may stand in for Restore's own diff (see takePlanned).
	reusable bool
}

func firstFile(c statepkg.Component) *statepkg.FileEntry {
	if len(c.Files) == 0 {
		return nil
	}
	return &c.Files[0]
}

// indexChecked reports whether a recent Plan of this component onto this
// target validated the very index Restore is given.
func (d *Driver) indexChecked(dir string, c statepkg.Component, o options) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.planned[planKey(dir, c, o)]
	return p != nil && time.Since(p.at) <= plannedFor && len(c.Files) > 0 && p.files == firstFile(c) && p.nfiles == len(c.Files)
}

func planKey(dir string, c statepkg.Component, o options) string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%+v", dir, c.Name, c.Digest, o)
}

func (d *Driver) remember(dir string, c statepkg.Component, o options, df diff, reusable bool) {
	p := &plannedDiff{key: planKey(dir, c, o), at: time.Now(), df: df, files: firstFile(c), nfiles: len(c.Files), reusable: reusable}
	if df.marker != nil {
		p.marker = *df.marker
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, old := range d.planned {
		if time.Since(old.at) > plannedFor {
			delete(d.planned, k)
		}
	}
	if d.planned == nil {
		d.planned = map[string]*plannedDiff{}
	}
	d.planned[p.key] = p
}

// takePlanned returns, once, the diff of a Plan of the same component onto
// the same target made moments ago, if no apply has happened since (the
// marker is unchanged). The diff is as fresh as one computed now would be
// at the moment the renames start: both are snapshots of a target that
// the driver does not lock.
func (d *Driver) takePlanned(root *os.Root, dir string, c statepkg.Component, o options) (diff, bool) {
	key := planKey(dir, c, o)
	d.mu.Lock()
	p := d.planned[key]
	delete(d.planned, key)
	d.mu.Unlock()
	if p == nil || !p.reusable || time.Since(p.at) > plannedFor || p.files != firstFile(c) || p.nfiles != len(c.Files) {
		// The diff's indices are only meaningful for the index it was
		// computed from.
		return diff{}, false
	}
	var now Marker
	if m := readMarker(root); m != nil {
		now = *m
	}
	if now.ComponentDigest != p.marker.ComponentDigest || now.Digest != p.marker.Digest ||
		!now.AppliedAt.Equal(p.marker.AppliedAt) || !now.stamp.Equal(p.marker.stamp) {
		return diff{}, false
	}
	return p.df, true
}

func fillPlan(pl *driver.ComponentPlan, c statepkg.Component, df diff, o options) {
	if df.marker != nil {
		pl.Current = df.marker.ComponentDigest
	}
	pl.Bytes, pl.Files, pl.Deletes = df.bytes, int64(len(df.write)+len(df.hard)), int64(len(df.deletes))
	switch {
	case df.changes() == 0 && df.marker != nil && df.marker.ComponentDigest == c.Digest:
		pl.Action, pl.Reason = driver.ActionSkip, "already applied"
	case o.force:
		pl.Action, pl.Reason = driver.ActionReplace, "force: every entry is rewritten"
	case df.changes() == 0:
		pl.Action, pl.Reason = driver.ActionSkip, "target already identical"
	case df.empty:
		pl.Action = driver.ActionCreate
	case int(pl.Files)+len(df.dirs) >= len(c.Files):
		pl.Action = driver.ActionReplace
	default:
		pl.Action = driver.ActionIncremental
		pl.Reason = fmt.Sprintf("%d of %d entries change, %d removed", pl.Files+int64(len(df.dirs)+len(df.meta)), len(c.Files), pl.Deletes)
	}
	if pl.Action != driver.ActionSkip && !o.force && df.marker != nil && df.marker.ComponentDigest == c.Digest {
		// The marker says this version was applied: what differs from
		// its index was changed since.
		pl.Changed = changedPaths(c, df)
		pl.Reason = fmt.Sprintf("%s: %d of %d entries differ from the version applied, %d added", driver.ReasonChanged,
			len(df.write)+len(df.hard)+len(df.dirs)+len(df.meta), len(c.Files), len(df.deletes))
	}
}

// changedPaths names, at most driver.MaxChanged, the entries an apply
// puts back.
func changedPaths(c statepkg.Component, df diff) []string {
	var out []string
	add := func(s string) bool {
		if len(out) == driver.MaxChanged {
			return false
		}
		out = append(out, s)
		return true
	}
	for _, g := range []struct {
		ids  []int
		what string
	}{{df.write, "changed or missing"}, {df.hard, "changed or missing"}, {df.dirs, "missing"}, {df.meta, "mode, owner or time changed"}} {
		for _, i := range g.ids {
			if !add(c.Files[i].Path + ": " + g.what) {
				return out
			}
		}
	}
	for _, p := range df.deletes {
		if !add(p + ": added") {
			return out
		}
	}
	return out
}

func fullDiff(c statepkg.Component) diff {
	df := diff{empty: true}
	for i, e := range c.Files {
		switch e.Type {
		case statepkg.FileDir:
			df.dirs = append(df.dirs, i)
		case statepkg.FileHardlink:
			df.hard = append(df.hard, i)
		default:
			df.write = append(df.write, i)
			df.bytes += e.Size
		}
	}
	return df
}
