//go:build linux || darwin

package volume

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Marker is the content of .unikube-state.json at the top of a target.
type Marker struct {
	State           string    `json:"state,omitempty"`
	Digest          string    `json:"digest,omitempty"`
	Component       string    `json:"component"`
	ComponentDigest string    `json:"componentDigest"`
	AppliedAt       time.Time `json:"appliedAt"`

	// stamp is the marker file's ctime, on the filesystem's own (coarse)
	// clock: a file whose ctime is strictly older has not been touched
	// since the apply that wrote the marker.
	stamp time.Time
}

type options struct {
	chown    bool
	uid, gid int // -1: from the index
	verify   bool
	// keepSetID keeps setuid/setgid bits (see OptKeepSetID).
	keepSetID bool
	// force rewrites every entry, as if the target held none of them.
	force bool
}

func parseOptions(t driver.Target) (options, error) {
	o := options{chown: os.Geteuid() == 0, uid: -1, gid: -1, verify: t.Option(OptVerify, "") == "true", force: t.Force}
	switch v := t.Option(OptKeepSetID, ""); v {
	case "", "false":
	case "true":
		o.keepSetID = true
	default:
		return o, fmt.Errorf("%s option %q: want true or false", OptKeepSetID, v)
	}
	if own := t.Option(OptOwner, ""); own != "" {
		u, g, ok := strings.Cut(own, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return o, fmt.Errorf("owner option %q: want numeric uid:gid, e.g. 1000:1000", own)
		}
		if err := currentIdentity().mayGiveTo(uid, gid); err != nil {
			return o, fmt.Errorf("owner option %q: %w", own, err)
		}
		o.chown, o.uid, o.gid = true, uid, gid
	}
	return o, nil
}

// identity is who this process is, as far as giving files away goes.
type identity struct {
	euid     int
	groups   []int // effective and supplementary groups
	capChown bool
}

func currentIdentity() identity {
	groups, _ := os.Getgroups()
	return identity{euid: os.Geteuid(), groups: append(groups, os.Getegid()), capChown: hasCapChown()}
}

// mayGiveTo says why files cannot be made owned by uid:gid, or nil when
// they can: root or CAP_CHOWN may give files to anyone; others only keep
// their own uid and choose among their own groups. Checked before anything
// is written, so an apply fails at once rather than on the first file.
func (id identity) mayGiveTo(uid, gid int) error {
	switch {
	case id.euid == 0 || id.capChown:
		return nil
	case uid != id.euid:
		return fmt.Errorf("this restore runs as uid %d without the right to change owners, so files cannot be given to uid %d; leave the option out (files then belong to uid %d: in a cluster, the workload's user) or run the restore as root", id.euid, uid, id.euid)
	case !slices.Contains(id.groups, gid):
		return fmt.Errorf("this restore runs as uid %d, which is not in group %d and cannot give files to it; use one of its groups %v or leave the option out", id.euid, gid, id.groups)
	}
	return nil
}

// hasCapChown reads CAP_CHOWN (bit 0) from the effective capabilities;
// false where they cannot be read.
func hasCapChown() bool {
	v, ok := procStatus("CapEff")
	if !ok {
		return false
	}
	caps, err := strconv.ParseUint(v, 16, 64)
	return err == nil && caps&1 != 0
}

// procStatus returns a field of /proc/self/status, trimmed.
func procStatus(name string) (string, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// mode is the permission bits an entry gets: the index's, less setuid and
// (but on directories) setgid unless they are kept.
func (o options) mode(e statepkg.FileEntry) uint32 {
	m := e.Mode & 0o7777
	switch {
	case o.keepSetID:
	case e.Type == statepkg.FileDir:
		m &^= syscall.S_ISUID
	default:
		m &^= syscall.S_ISUID | syscall.S_ISGID
	}
	return m
}

func (o options) owner(e statepkg.FileEntry) (int, int) {
	uid, gid := e.UID, e.GID
	if o.uid >= 0 {
		uid, gid = o.uid, o.gid
	}
	return uid, gid
}

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

func readMarker(root *os.Root) *Marker {
	b, err := root.ReadFile(MarkerName)
	if err != nil {
		return nil
	}
	var m Marker
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	fi, err := root.Lstat(MarkerName)
	if err != nil {
		return nil
	}
	m.stamp = statCtime(fi)
	return &m
}

// finfo is what the diff needs of a target entry, from one fstatat.
type finfo struct {
	typ          uint32 // S_IFMT bits
	size         int64
	mtime, ctime time.Time
	uid, gid     int
	mode         uint32 // permission bits
	ino          uint64
}

func (f finfo) isDir() bool     { return f.typ == unix.S_IFDIR }
func (f finfo) isReg() bool     { return f.typ == unix.S_IFREG }
func (f finfo) isSymlink() bool { return f.typ == unix.S_IFLNK }

func (o options) metaDiffers(e statepkg.FileEntry, fi finfo, withMTime bool) bool {
	if o.chown {
		wu, wg := o.owner(e)
		if fi.uid != wu || fi.gid != wg {
			return true
		}
	}
	if e.Type != statepkg.FileSymlink && fi.mode != o.mode(e) {
		return true
	}
	return withMTime && !fi.mtime.Equal(e.MTime)
}

// computeDiff compares the index with the target. A regular file counts as
// unchanged when size and mtime match and either its ctime predates the
// marker of the previous apply (nothing touched it since we wrote it) or its
// sha256 matches. Each target directory is opened once (through the root,
// so symlinks cannot lead outside), listed once, and its entries examined
// with one fstatat each.
//
// Directories are examined level by level (a level decides which of the
// next level's directories really are directories in the target), and
// within a level the fstatat calls, tens of thousands for a volume of small
// files, are spread over several goroutines in batches.
func computeDiff(ctx context.Context, root *os.Root, c statepkg.Component, o options) (diff, error) {
	df := diff{marker: readMarker(root), empty: true}
	kids := map[string][]int{} // directory -> indices of its entries
	levels := [][]string{{"."}}
	for i, e := range c.Files {
		parent := path.Dir(e.Path)
		kids[parent] = append(kids[parent], i)
		if e.Type == statepkg.FileDir {
			depth := strings.Count(e.Path, "/") + 1
			for len(levels) <= depth {
				levels = append(levels, nil)
			}
			levels[depth] = append(levels[depth], e.Path)
		}
	}
	realDir := map[string]bool{".": true} // index dirs that are directories in the target
	// unchanged (path -> inode of regular files kept) only serves to decide
	// hardlinks; without any it is not built (50,000 map entries otherwise).
	var unchanged map[string]uint64
	for _, e := range c.Files {
		if e.Type == statepkg.FileHardlink {
			unchanged = map[string]uint64{}
			break
		}
	}
	for _, level := range levels {
		if err := diffLevel(ctx, root, c, o, df.marker, level, kids, realDir, unchanged, &df); err != nil {
			return df, err
		}
	}
	for _, h := range df.pendingHard {
		if ino, ok := unchanged[c.Files[h.i].Linkname]; !ok || !h.reg || h.ino != ino {
			df.hard = append(df.hard, h.i)
		}
	}
	df.pendingHard = nil
	sort.Ints(df.dirs)
	sort.Ints(df.write)
	sort.Ints(df.hard)
	sort.Ints(df.meta)
	return df, nil
}

// diffBatch is at most this many entries of one directory examined by one
// goroutine.
const diffBatch = 256

// listedDir is a target directory opened and counted for the diff.
type listedDir struct {
	dir   string
	ids   []int // index entries directly inside it
	f     *os.File
	count int // entries in the target directory (reserved ones left out)
	found int // index entries found in it
}

// batchDiff is what examining one batch of a directory's entries found.
type batchDiff struct {
	dirs, write, hard, meta []int
	pendingHard             []pendingHard
	bytes                   int64
	realDirs                []string
	unchanged               []keptFile
	found                   int // entries that exist in the target
}

type keptFile struct {
	path string
	ino  uint64
}

func diffWorkers() int { return min(max(runtime.GOMAXPROCS(0)*2, 2), 8) }

// parallel runs fn(0..n-1) on a few goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(int) error) error {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		first   error
		workers sync.WaitGroup
	)
	for range min(diffWorkers(), n) {
		workers.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(k)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	workers.Wait()
	return first
}

func diffLevel(ctx context.Context, root *os.Root, c statepkg.Component, o options, marker *Marker, level []string, kids map[string][]int, realDir map[string]bool, unchanged map[string]uint64, df *diff) error {
	classifyMissing := func(b *batchDiff, i int) {
		e := c.Files[i]
		switch e.Type {
		case statepkg.FileDir:
			b.dirs = append(b.dirs, i)
		case statepkg.FileHardlink:
			b.hard = append(b.hard, i)
		default:
			b.write = append(b.write, i)
			b.bytes += e.Size
		}
	}
	// Open and list every directory of the level that exists as one.
	listed := make([]listedDir, len(level))
	defer func() {
		for _, l := range listed {
			if l.f != nil {
				l.f.Close()
			}
		}
	}()
	err := parallel(ctx, len(level), func(k int) error {
		l := &listed[k]
		l.dir, l.ids = level[k], kids[level[k]]
		if !realDir[l.dir] {
			return nil
		}
		f, err := root.Open(l.dir)
		if err != nil {
			return fmt.Errorf("inspect target directory %s: %w", l.dir, err)
		}
		l.f = f
		// Only counted here: see deletesOf.
		if l.count, _, err = listDir(int(f.Fd()), l.dir == ".", false); err != nil {
			return fmt.Errorf("list target directory %s: %w", l.dir, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Cut the entries into batches, in index order.
	type batch struct {
		l      *listedDir
		lo, hi int
	}
	var batches []batch
	for k := range listed {
		l := &listed[k]
		if l.count > 0 {
			df.empty = false
		}
		for lo := 0; lo < len(l.ids); lo += diffBatch {
			batches = append(batches, batch{l: l, lo: lo, hi: min(lo+diffBatch, len(l.ids))})
		}
	}
	results := make([]batchDiff, len(batches))
	err = parallel(ctx, len(batches), func(k int) error {
		bt, b := batches[k], &results[k]
		if bt.l.f == nil {
			for _, i := range bt.l.ids[bt.lo:bt.hi] {
				classifyMissing(b, i)
			}
			return nil
		}
		return diffEntries(root, c, o, marker, bt.l, bt.l.ids[bt.lo:bt.hi], b, classifyMissing)
	})
	if err != nil {
		return err
	}
	for k, b := range results {
		batches[k].l.found += b.found
		df.dirs = append(df.dirs, b.dirs...)
		df.write = append(df.write, b.write...)
		df.hard = append(df.hard, b.hard...)
		df.meta = append(df.meta, b.meta...)
		df.pendingHard = append(df.pendingHard, b.pendingHard...)
		df.bytes += b.bytes
		for _, d := range b.realDirs {
			realDir[d] = true
		}
		if unchanged != nil {
			for _, u := range b.unchanged {
				unchanged[u.path] = u.ino
			}
		}
	}
	for k := range listed {
		l := &listed[k]
		if l.f == nil {
			continue
		}
		del, err := deletesOf(c, l)
		if err != nil {
			return err
		}
		df.deletes = append(df.deletes, del...)
	}
	return nil
}

// deletesOf returns the entries of a listed target directory that the
// index does not hold. When every one of the directory's index entries was
// found in it and it holds no more entries than that, it holds nothing
// else, and its names need not be read or compared (the common case of a
// re-apply: no string per entry, no map).
func deletesOf(c statepkg.Component, l *listedDir) ([]string, error) {
	if l.found == len(l.ids) && l.count == l.found {
		return nil, nil
	}
	_, names, err := listDir(int(l.f.Fd()), l.dir == ".", true)
	if err != nil {
		return nil, fmt.Errorf("list target directory %s: %w", l.dir, err)
	}
	want := make(map[string]bool, len(l.ids))
	for _, i := range l.ids {
		want[path.Base(c.Files[i].Path)] = true
	}
	var out []string
	for _, n := range names {
		if !want[n] {
			out = append(out, path.Join(l.dir, n))
		}
	}
	return out, nil
}

// diffEntries examines entries ids of the listed directory l, one fstatat
// each.
func diffEntries(root *os.Root, c statepkg.Component, o options, marker *Marker, l *listedDir, ids []int, b *batchDiff, classifyMissing func(*batchDiff, int)) error {
	fd := int(l.f.Fd())
	var linkBuf []byte
	for _, i := range ids {
		e := c.Files[i]
		name := path.Base(e.Path)
		if o.force {
			// Forced: rewrite it. A directory rewritten whole replaces
			// the old one, so its entries need no diff of their own.
			classifyMissing(b, i)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				classifyMissing(b, i)
				continue
			}
			return fmt.Errorf("inspect target %s: %w", e.Path, err)
		}
		b.found++
		fi := fromStat(&st)
		switch e.Type {
		case statepkg.FileDir:
			switch {
			case !fi.isDir():
				b.dirs = append(b.dirs, i)
			default:
				b.realDirs = append(b.realDirs, e.Path)
				if o.metaDiffers(e, fi, true) {
					b.meta = append(b.meta, i)
				}
			}
		case statepkg.FileRegular:
			if fi.isReg() && fi.size == e.Size && fi.mtime.Equal(e.MTime) {
				same := !o.verify && marker != nil && fi.ctime.Before(marker.stamp)
				if !same {
					var err error
					if same, err = hashEquals(root, e); err != nil {
						return err
					}
				}
				if same {
					b.unchanged = append(b.unchanged, keptFile{e.Path, fi.ino})
					if o.metaDiffers(e, fi, false) {
						b.meta = append(b.meta, i)
					}
					continue
				}
			}
			b.write = append(b.write, i)
			b.bytes += e.Size
		case statepkg.FileSymlink:
			if fi.isSymlink() {
				if linkBuf == nil {
					linkBuf = make([]byte, 4096)
				}
				if n, err := unix.Readlinkat(fd, name, linkBuf); err == nil && string(linkBuf[:n]) == e.Linkname {
					if o.metaDiffers(e, fi, false) {
						b.meta = append(b.meta, i)
					}
					continue
				}
			}
			b.write = append(b.write, i)
		case statepkg.FileHardlink:
			// Decided once every directory is seen: the link's source may
			// live in a directory examined later.
			b.pendingHard = append(b.pendingHard, pendingHard{i: i, ino: fi.ino, reg: fi.isReg()})
		}
	}
	return nil
}

func hashEquals(root *os.Root, e statepkg.FileEntry) (bool, error) {
	f, err := root.Open(e.Path)
	if err != nil {
		return false, fmt.Errorf("hash target %s: %w", e.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("hash target %s: %w", e.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == e.SHA256, nil
}

// Restore implements driver.Driver. Every file that changes is first written
// into a staging directory inside the target (same filesystem), so a failed
// download, a full disk or a cancelled context leave the target untouched;
// only then are entries renamed into place, files the state does not hold
// removed, and the marker written.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (res driver.ComponentResult, err error) {
	start := time.Now()
	res = driver.ComponentResult{Component: c.Name, Kind: c.Kind, Strategy: "staging-rename"}
	defer func() { res.Duration = time.Since(start) }()
	phase := driver.PhasePlan
	fail := func(err error) (driver.ComponentResult, error) {
		return res, fmt.Errorf("restore %s: %s: %w", c.Name, phase, err)
	}
	o, err := parseOptions(t)
	if err != nil {
		return fail(err)
	}
	dir, err := targetDir(t)
	if err != nil {
		return fail(err)
	}
	if !d.indexChecked(dir, c, o) {
		if err := validateIndex(c); err != nil {
			return fail(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	removeStaleStaging(root)
	df, ok := d.takePlanned(root, dir, c, o)
	if !ok {
		if df, err = computeDiff(ctx, root, c, o); err != nil {
			return fail(err)
		}
	}
	var pl driver.ComponentPlan
	fillPlan(&pl, c, df, o)
	res.Action = pl.Action
	if df.changes() == 0 {
		if df.marker == nil || df.marker.ComponentDigest != c.Digest {
			phase = driver.PhaseSwap
			if err := writeMarker(root, c, t); err != nil {
				return fail(err)
			}
		}
		return res, nil
	}

	phase = driver.PhaseDownload
	staging := stagingPrefix + randHex()
	if err := root.Mkdir(staging, 0o700); err != nil {
		return fail(fmt.Errorf("create staging directory: %w", err))
	}
	defer func() {
		if rerr := root.RemoveAll(staging); rerr != nil && err == nil {
			err = fmt.Errorf("restore %s: %s: remove staging directory: %w", c.Name, driver.PhaseCleanup, rerr)
		}
	}()
	st, err := root.OpenRoot(staging)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	w := &stagingWriter{st: st, o: o, made: map[string]bool{".": true}, flat: flatStaging(c, df), umask: readUmask()}
	defer w.close()
	for _, i := range df.dirs {
		if err := w.mkdir(c.Files[i].Path); err != nil {
			return fail(err)
		}
	}
	n, files, err := fetchFiles(ctx, c, df.write, src, w, p)
	res.Bytes, res.FilesWritten = n, files
	if err != nil {
		return fail(err)
	}
	for _, i := range df.write {
		e := c.Files[i]
		if e.Type != statepkg.FileSymlink {
			continue
		}
		if err := w.symlink(e); err != nil {
			return fail(err)
		}
		res.FilesWritten++
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	// From here the target changes; the steps are renames and metadata, fast
	// and without network I/O.
	phase = driver.PhaseSwap
	moved := map[string]bool{}
	under := func(p string) bool {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if moved[dir] {
				return true
			}
		}
		return false
	}
	rn := &renamer{root: root, st: st, w: w}
	defer rn.close()
	for _, i := range mergeSorted(df.dirs, df.write) {
		e := c.Files[i]
		if under(e.Path) {
			if e.Type == statepkg.FileDir {
				moved[e.Path] = true
			}
			continue
		}
		if err := rn.move(e); err != nil {
			return fail(err)
		}
		if e.Type == statepkg.FileDir {
			moved[e.Path] = true
		}
	}
	rn.close()
	for _, i := range df.hard {
		e := c.Files[i]
		tmp := staging + "/.hardlink-" + strconv.Itoa(i)
		if err := root.Link(e.Linkname, tmp); err != nil {
			return fail(err)
		}
		if err := clearFor(root, e); err != nil {
			return fail(err)
		}
		if err := root.Rename(tmp, e.Path); err != nil {
			return fail(err)
		}
		res.FilesWritten++
	}
	sort.Sort(sort.Reverse(sort.StringSlice(df.deletes)))
	for _, p := range df.deletes {
		if err := root.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fail(err)
		}
		res.FilesDeleted++
	}
	for _, i := range df.meta {
		if err := setMeta(root, o, c.Files[i]); err != nil {
			return fail(err)
		}
	}
	// Directory metadata last, deepest first: renames into a directory
	// change its mtime.
	for i := len(c.Files) - 1; i >= 0; i-- {
		e := c.Files[i]
		if e.Type != statepkg.FileDir {
			continue
		}
		fi, err := lstatInfo(root, e.Path)
		if err != nil {
			return fail(err)
		}
		if o.metaDiffers(e, fi, true) {
			if err := setMeta(root, o, e); err != nil {
				return fail(err)
			}
		}
	}
	if err := writeMarker(root, c, t); err != nil {
		return fail(err)
	}
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
	return res, nil
}

// renamer moves entries from staging into the target with renameat on
// directory descriptors opened through the roots (so no path leaves them),
// keeping the last pair open: entries arrive grouped by directory, and
// os.Root.Rename would walk both paths component by component each time.
type renamer struct {
	root, st       *os.Root
	w              *stagingWriter // where each entry is in staging
	fromDir, toDir string
	from, to       *os.File
	fromFd, toFd   int
}

// move puts staging's e.Path in place, first removing a directory that
// stands there or anything where a directory goes (a rename can replace
// neither).
func (r *renamer) move(e statepkg.FileEntry) error {
	dir, name := path.Dir(e.Path), path.Base(e.Path)
	fromDir, fromName := r.w.loc(e.Path)
	if r.from == nil || r.fromDir != fromDir || r.toDir != dir {
		r.close()
		from, err := r.st.Open(fromDir)
		if err != nil {
			return err
		}
		to, err := r.root.Open(dir)
		if err != nil {
			from.Close()
			return err
		}
		r.fromDir, r.toDir, r.from, r.to, r.fromFd, r.toFd = fromDir, dir, from, to, int(from.Fd()), int(to.Fd())
	}
	var st unix.Stat_t
	if err := unix.Fstatat(r.toFd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil &&
		(st.Mode&unix.S_IFMT == unix.S_IFDIR || e.Type == statepkg.FileDir) {
		if err := r.root.RemoveAll(e.Path); err != nil {
			return err
		}
	}
	if err := unix.Renameat(r.fromFd, fromName, r.toFd, name); err != nil {
		return &os.LinkError{Op: "rename", Old: e.Path, New: e.Path, Err: err}
	}
	return nil
}

func (r *renamer) close() {
	if r.from != nil {
		r.from.Close()
		r.to.Close()
		r.from, r.to = nil, nil
	}
}

// mergeSorted merges two ascending lists (the diff keeps its lists
// sorted) in one pass.
func mergeSorted(a, b []int) []int {
	if !sort.IntsAreSorted(a) || !sort.IntsAreSorted(b) {
		out := append(append(make([]int, 0, len(a)+len(b)), a...), b...)
		sort.Ints(out)
		return out
	}
	out := make([]int, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] <= b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// clearFor removes whatever stands at e's path in the target when its type
// cannot simply be replaced by a rename.
func clearFor(root *os.Root, e statepkg.FileEntry) error {
	fi, err := root.Lstat(e.Path)
	if err != nil {
		return nil //nolint:nilerr // nothing there: nothing to clear
	}
	if fi.IsDir() || e.Type == statepkg.FileDir {
		return root.RemoveAll(e.Path)
	}
	return nil
}

func setMeta(root *os.Root, o options, e statepkg.FileEntry) error {
	if o.chown {
		uid, gid := o.owner(e)
		if err := root.Lchown(e.Path, uid, gid); err != nil {
			return err
		}
	}
	if e.Type == statepkg.FileSymlink {
		return nil
	}
	if err := root.Chmod(e.Path, fileMode(o.mode(e))); err != nil {
		return err
	}
	return root.Chtimes(e.Path, e.MTime, e.MTime)
}

func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func writeMarker(root *os.Root, c statepkg.Component, t driver.Target) error {
	m := Marker{State: t.State, Digest: t.Digest, Component: c.Name, ComponentDigest: c.Digest, AppliedAt: time.Now().UTC()}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := MarkerName + ".tmp"
	if err := root.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return root.Rename(tmp, MarkerName)
}

// ReadMarker returns the marker of a volume target, or nil when it has none.
func ReadMarker(dir string) *Marker {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil
	}
	defer root.Close()
	return readMarker(root)
}

func removeStaleStaging(root *os.Root) {
	f, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, n := range names {
		if strings.HasPrefix(n, stagingPrefix) {
			_ = root.RemoveAll(n)
		}
	}
}

// readUmask returns the process's umask from /proc/self/status (Linux 4.7
// and later), or -1. Setting it to read it would race with other
// goroutines creating files.
func readUmask() int {
	v, ok := procStatus("Umask")
	if !ok {
		return -1
	}
	if m, err := strconv.ParseUint(v, 8, 32); err == nil && m <= 0o777 {
		return int(m)
	}
	return -1
}

func randHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clone returns a writer into the same staging for another goroutine: the
// directories made so far are copied, the directory descriptor is its own.
// Its mkdir calls must not race with another writer's on the same path
// (fetchSegments' writers only reach directories made beforehand).
func (w *stagingWriter) clone() *stagingWriter {
	made := make(map[string]bool, len(w.made))
	for d := range w.made {
		made[d] = true
	}
	return &stagingWriter{st: w.st, o: w.o, made: made, flat: w.flat, umask: w.umask}
}

// stagingWriter creates entries inside the staging directory.
type stagingWriter struct {
	st      *os.Root
	o       options
	made    map[string]bool
	dir     *os.File
	dirName string
	dirFd   int
	// created is the owner (uid, gid) of files this process creates in
	// dir, once known.
	created *[2]int
	// umask is the process's file mode creation mask, -1 when unknown.
	umask int
	// plainModes: files created in dir get the mode asked for less the
	// umask (no default ACL).
	plainModes bool
	// modeSet: the file open created last has its final mode.
	modeSet bool
	// modeChecked: a file created in dir with its final mode was seen
	// to have it.
	modeChecked bool
	// flat names the entries created at the top of staging (under a
	// reserved name) rather than at their path: see flatStaging.
	flat map[string]string
}

// flatStaging places the files and symlinks whose directory already exists
// in the target at the top of staging, each under a reserved name, from
// where they are renamed into their directory: an incremental apply then
// creates no mirror directory in staging per directory it touches (a mkdir
// each, and file creation in a fresh directory, both costly). Entries of
// directories the apply creates are written at their paths, as the whole
// directory is renamed into place.
func flatStaging(c statepkg.Component, df diff) map[string]string {
	newDir := make(map[string]bool, len(df.dirs))
	for _, i := range df.dirs {
		newDir[c.Files[i].Path] = true
	}
	flat := map[string]string{}
	for _, i := range df.write {
		p := c.Files[i].Path
		if !newDir[path.Dir(p)] {
			// Top-level index names never start with stagingPrefix.
			flat[p] = stagingPrefix + strconv.Itoa(i)
		}
	}
	return flat
}

// loc returns the staging directory and name of index path p.
func (w *stagingWriter) loc(p string) (dir, name string) {
	if n, ok := w.flat[p]; ok {
		return ".", n
	}
	return path.Dir(p), path.Base(p)
}

// stagePath returns the path inside staging of index path p.
func (w *stagingWriter) stagePath(p string) string {
	if n, ok := w.flat[p]; ok {
		return n
	}
	return p
}

func (w *stagingWriter) mkdir(p string) error {
	if w.made[p] {
		return nil
	}
	if err := w.mkdir(path.Dir(p)); err != nil {
		return err
	}
	if err := w.st.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	w.made[p] = true
	return nil
}

func (w *stagingWriter) symlink(e statepkg.FileEntry) error {
	dir, _ := w.loc(e.Path)
	if err := w.mkdir(dir); err != nil {
		return err
	}
	sp := w.stagePath(e.Path)
	if err := w.st.Symlink(e.Linkname, sp); err != nil {
		return err
	}
	if w.o.chown {
		uid, gid := w.o.owner(e)
		return w.st.Lchown(sp, uid, gid)
	}
	return nil
}

// dirFD returns a descriptor of staging directory dir, keeping the last one
// open: files arrive grouped by directory.
func (w *stagingWriter) dirFD(dir string) (int, error) {
	if w.dir != nil && w.dirName == dir {
		return w.dirFd, nil
	}
	w.close()
	if err := w.mkdir(dir); err != nil {
		return -1, err
	}
	f, err := w.st.Open(dir)
	if err != nil {
		return -1, err
	}
	w.dir, w.dirName, w.dirFd = f, dir, int(f.Fd())
	w.created = nil
	// Without a default ACL on the directory (on a filesystem that has
	// POSIX ACLs), a new file's mode is the one asked for less the
	// umask; with one, or on other filesystems (NFS, FUSE, ...), the
	// mode a file gets is not foreseen and finish sets it.
	_, err = unix.Fgetxattr(w.dirFd, "system.posix_acl_default", nil)
	w.plainModes = w.umask >= 0 && errors.Is(err, unix.ENODATA)
	w.modeChecked = false
	return w.dirFd, nil
}

func (w *stagingWriter) close() {
	if w.dir != nil {
		w.dir.Close()
		w.dir = nil
	}
}

// fdWriter writes to a raw descriptor: no poller registration or other
// per-file overhead of *os.File, which counts with many small files.
type fdWriter int

func (f fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(int(f), b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// open creates one regular file in staging: exclusively, never through a
// symlink, in a directory we made.
func (w *stagingWriter) open(e statepkg.FileEntry) (int, error) {
	dir, name := w.loc(e.Path)
	dfd, err := w.dirFD(dir)
	if err != nil {
		return -1, err
	}
	// A file that gets its owner at creation (see created) is created
	// with its final mode when that is exact (no umask bits, no ACL, no
	// setuid/setgid/sticky bits, which open may drop), saving the chmod;
	// any other file is created private and finish sets owner and mode.
	mode, want := uint32(0o600), w.o.mode(e)
	w.modeSet = false
	if w.plainModes && want&^0o777 == 0 && want&uint32(w.umask) == 0 && w.ownedAtCreation(e) {
		mode, w.modeSet = want, true
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, fmt.Errorf("create %s in staging: %w", e.Path, err)
	}
	if w.modeSet && !w.modeChecked {
		// The first file created with its final mode in this directory
		// is checked: should anything else shape new files' modes here,
		// finish sets them as for any other file.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("create %s in staging: %w", e.Path, err)
		}
		w.modeChecked = true
		if permBits(&st) != want {
			w.plainModes, w.modeSet = false, false
		}
	}
	if w.o.chown && w.created == nil {
		// The owner this process gives a new file in this directory
		// (its uid; its gid or the directory's), learnt from the first
		// one: finish leaves out the chown of files that already have
		// the owner they need, one system call per file of the usual
		// volume whose files belong to the restoring user.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("create %s in staging: %w", e.Path, err)
		}
		w.created = &[2]int{int(st.Uid), int(st.Gid)}
	}
	return fd, nil
}

// ownedAtCreation reports whether a file this process creates in the
// current directory already has the owner e needs (always, when owners are
// not set).
func (w *stagingWriter) ownedAtCreation(e statepkg.FileEntry) bool {
	if !w.o.chown {
		return true
	}
	uid, gid := w.o.owner(e)
	return w.created != nil && *w.created == [2]int{uid, gid}
}

// finish sets owner, mode and mtime of a file written through fd and
// closes it.
func (w *stagingWriter) finish(e statepkg.FileEntry, fd int) error {
	var err error
	if w.o.chown {
		// A file created in w.dir by this process is owned by
		// w.created (see open); chown to that very owner would change
		// nothing (the file has no setuid/setgid bits or capabilities
		// to clear yet).
		if !w.ownedAtCreation(e) {
			uid, gid := w.o.owner(e)
			err = unix.Fchown(fd, uid, gid)
		}
	}
	if err == nil && !w.modeSet {
		// After chown, which clears setuid/setgid.
		err = unix.Fchmod(fd, w.o.mode(e))
	}
	if err == nil {
		ts := unix.NsecToTimespec(e.MTime.UnixNano())
		// w.dirFd is still the directory open created the file in.
		_, name := w.loc(e.Path)
		err = unix.UtimesNanoAt(w.dirFd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", e.Path, err)
	}
	return nil
}

// demux receives the bytes of the fetched spans, back to back, and writes
// each file's range straight from the chunk buffers into its staging file:
// no pipe, no intermediate copies.
type demux struct {
	ctx   context.Context
	w     *stagingWriter
	files []statepkg.FileEntry // in stream order
	vOff  []int64              // offset of each file in the concatenated spans
	vEnd  int64                // length of the concatenated spans
	pos   int64                // bytes received so far
	next  int                  // next file to open
	cur   int                  // file being written, -1 when none
	fd    int
	h     hash.Hash
	p     driver.Progress
	name  string
	done  int64
	pend  int64
}

func newDemux(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, spans []span, w *stagingWriter, p driver.Progress) *demux {
	d := &demux{ctx: ctx, w: w, files: files, vOff: make([]int64, len(files)), cur: -1, fd: -1, p: p, name: c.Name}
	var v int64
	for _, s := range spans {
		for k := s.lo; k < s.hi; k++ {
			d.vOff[k] = v + files[k].DataOffset - s.off
		}
		v += s.end - s.off
	}
	d.vEnd = v
	return d
}

// startFiles opens (and, when empty, finishes) files starting at pos.
func (d *demux) startFiles() error {
	for d.cur < 0 && d.next < len(d.files) && d.vOff[d.next] == d.pos {
		e := d.files[d.next]
		fd, err := d.w.open(e)
		if err != nil {
			return err
		}
		d.cur, d.fd = d.next, fd
		d.next++
		if d.w.o.verify {
			d.h = sha256.New()
		}
		if e.Size == 0 {
			if err := d.endFile(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *demux) endFile() error {
	e := d.files[d.cur]
	fd := d.fd
	d.cur, d.fd = -1, -1
	if d.w.o.verify {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != e.SHA256 {
			unix.Close(fd)
			return fmt.Errorf("%s: content sha256 %s does not match the index (%s)", e.Path, got, e.SHA256)
		}
	}
	if err := d.w.finish(e, fd); err != nil {
		return err
	}
	d.done++
	if d.done%64 == 0 {
		d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Files: 64})
	}
	return nil
}

func (d *demux) Write(b []byte) (int, error) {
	n := len(b)
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	d.pend += int64(n)
	if d.pend >= 1<<20 {
		d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Bytes: d.pend})
		d.pend = 0
	}
	for len(b) > 0 {
		if err := d.startFiles(); err != nil {
			return 0, err
		}
		if d.cur < 0 {
			// Bytes between files (tar headers, padding): skip to the
			// next file's start.
			skip := int64(len(b))
			if d.next < len(d.files) {
				skip = min(skip, d.vOff[d.next]-d.pos)
			}
			b = b[skip:]
			d.pos += skip
			continue
		}
		e := d.files[d.cur]
		left := d.vOff[d.cur] + e.Size - d.pos
		chunk := b[:min(int64(len(b)), left)]
		if _, err := fdWriter(d.fd).Write(chunk); err != nil {
			return 0, fmt.Errorf("write %s: %w", e.Path, err)
		}
		if d.h != nil {
			d.h.Write(chunk)
		}
		b = b[len(chunk):]
		d.pos += int64(len(chunk))
		if d.pos == d.vOff[d.cur]+e.Size {
			if err := d.endFile(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// close finishes files at the very end (empty ones) and checks that every
// file was written whole; it closes a half-written file on failure.
func (d *demux) close(failed bool) error {
	if failed {
		if d.fd >= 0 {
			unix.Close(d.fd)
		}
		return nil
	}
	d.p.Emit(driver.Event{Component: d.name, Phase: driver.PhaseDownload, Bytes: d.pend, Files: d.done % 64})
	if err := d.startFiles(); err != nil {
		return err
	}
	if d.cur >= 0 || d.next < len(d.files) || d.pos != d.vEnd {
		return fmt.Errorf("stream ended after %d of %d bytes", d.pos, d.vEnd)
	}
	return nil
}

// span is a byte range of the stream fetched in one ReadRange, holding the
// content of files[lo:hi] of the write list.
type span struct {
	off, end int64
	lo, hi   int
}

// planSpans maps the content ranges of the files to write onto chunk
// boundaries and merges ranges that share or touch chunks, so each needed
// chunk is fetched exactly once and no other chunk is fetched.
func planSpans(c statepkg.Component, files []statepkg.FileEntry) []span {
	var out []span
	for k, e := range files {
		a, b := e.DataOffset, e.DataOffset+e.Size
		if len(c.Chunks) > 0 && e.Size > 0 {
			i := sort.Search(len(c.Chunks), func(i int) bool { return c.Chunks[i].Offset+c.Chunks[i].Size > a })
			j := sort.Search(len(c.Chunks), func(j int) bool { return c.Chunks[j].Offset >= b }) - 1
			if i < len(c.Chunks) && j >= i {
				a, b = c.Chunks[i].Offset, c.Chunks[j].Offset+c.Chunks[j].Size
			}
		}
		if n := len(out); n > 0 && a <= out[n-1].end {
			if b > out[n-1].end {
				out[n-1].end = b
			}
			out[n-1].hi = k + 1
			continue
		}
		out = append(out, span{off: a, end: b, lo: k, hi: k + 1})
	}
	return out
}

// fetchFiles streams the content of the regular files among idx into
// staging, fetching only the chunks that hold them, in one pass.
func fetchFiles(ctx context.Context, c statepkg.Component, idx []int, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	var files []statepkg.FileEntry
	for _, i := range idx {
		if c.Files[i].Type == statepkg.FileRegular {
			files = append(files, c.Files[i])
		}
	}
	if len(files) == 0 {
		return 0, 0, nil
	}
	v, concurrent := src.(driver.ChunkVisitor)
	if concurrent && useParallel(files, w.o) {
		return fetchFilesParallel(ctx, c, files, v, w, p)
	}
	if concurrent {
		if segs := dirSegments(files, w, writerSegments(src)); len(segs) > 2 { // more than one run
			return fetchSegments(ctx, c, files, segs, shareReadAhead(src, len(segs)-1), w, p)
		}
	}
	return demuxFiles(ctx, c, files, src, w, p)
}

// demuxFiles writes files (in stream order) into staging through one demux
// fed by one pass over the spans holding them.
func demuxFiles(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	spans := planSpans(c, files)
	ranges := make([]driver.Span, len(spans))
	for i, s := range spans {
		ranges[i] = driver.Span{Off: s.off, End: s.end}
	}
	d := newDemux(ctx, c, files, spans, w, p)
	var err error
	if sr, ok := src.(driver.SpanReader); ok {
		err = sr.ReadSpans(ctx, ranges, d)
	} else {
		for _, r := range ranges {
			if err = src.ReadRange(ctx, r.Off, r.End-r.Off, d); err != nil {
				break
			}
		}
	}
	if cerr := d.close(err != nil); err == nil {
		err = cerr
	}
	return d.pos, d.done, err
}

// Small files are written by several demuxes at once, each over its own
// run of whole staging directories: the per-file system calls (create,
// write, owner, mode, times, close), which dominate an apply of small
// files, then use every core, and no two writers create files in the same
// directory (creation holds the directory's lock).
const (
	maxWriterSegments = 4
	// minSegmentFiles keeps small applies (an incremental one touching a
	// few files) on one writer.
	minSegmentFiles = 512
)

// writerSegments is how many runs of files are written at once: one per
// CPU, at most maxWriterSegments, and no more than the chunks the source
// reads ahead (each run reads ahead at least one; see shareReadAhead).
func writerSegments(src driver.ChunkSource) int {
	n := min(runtime.GOMAXPROCS(0), maxWriterSegments)
	if s, ok := src.(driver.StoreSource); ok {
		n = min(n, readAhead(s))
	}
	return n
}

// readAhead is how many chunks a StoreSource reads ahead (statepkg's
// default when unset).
func readAhead(s driver.StoreSource) int {
	if s.Options.Concurrency > 0 {
		return s.Options.Concurrency
	}
	return max(runtime.GOMAXPROCS(0), 2)
}

// shareReadAhead returns the source each of runs concurrent readers uses:
// a StoreSource's read-ahead (chunks fetched and held ahead, the memory
// bound ApplyOptions.ReadConcurrency sets per component) is shared among
// them, not multiplied.
func shareReadAhead(src driver.ChunkSource, runs int) driver.ChunkSource {
	if s, ok := src.(driver.StoreSource); ok {
		s.Options.Concurrency = max(readAhead(s)/runs, 1)
		return s
	}
	return src
}

// dirSegments cuts files (in stream order) into at most n runs of about
// equal count, each cut placed at the directory change nearest to its
// share; it returns the runs' start indices followed by len(files). A
// staging directory is never split, so files all in one make one run.
func dirSegments(files []statepkg.FileEntry, w *stagingWriter, n int) []int {
	n = min(n, len(files)/minSegmentFiles)
	if n < 2 {
		return []int{0, len(files)}
	}
	// boundary reports whether files i-1 and i lie in different
	// directories.
	boundary := func(i int) bool {
		a, _ := w.loc(files[i-1].Path)
		b, _ := w.loc(files[i].Path)
		return a != b
	}
	out := []int{0}
	for k := 1; k < n; k++ {
		prev, goal := out[len(out)-1], k*len(files)/n
		if goal <= prev {
			continue
		}
		fwd := goal
		for fwd < len(files) && !boundary(fwd) {
			fwd++
		}
		back := goal
		for back > prev && !boundary(back) {
			back--
		}
		switch {
		case back > prev && (fwd == len(files) || goal-back < fwd-goal):
			out = append(out, back)
		case fwd < len(files):
			out = append(out, fwd)
		}
	}
	return append(out, len(files))
}

// fetchSegments runs one demux per run of files (see dirSegments)
// concurrently, each with its own staging writer (directory descriptor),
// and returns the bytes and files written in all, and the first error. A
// failing run cancels the others.
func fetchSegments(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, segs []int, src driver.ChunkSource, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	// errgroup keeps the first real failure, not the cancellation it
	// causes in the other runs.
	g, ctx := errgroup.WithContext(ctx)
	var bytes, count atomic.Int64
	for k := 0; k+1 < len(segs); k++ {
		sw := w.clone()
		g.Go(func() error {
			defer sw.close()
			n, done, err := demuxFiles(ctx, c, files[segs[k]:segs[k+1]], src, sw, p)
			bytes.Add(n)
			count.Add(done)
			return err
		})
	}
	err := g.Wait()
	return bytes.Load(), count.Load(), err
}

// parallelMinAvg is the average file size from which files are written in
// parallel at their offsets (fetchFilesParallel) rather than in stream order
// by one writer (demux): with large files the writes dominate and are
// spread over every core; with small ones the per-file opens would be
// contended and the in-order writer with its cached directory is faster.
const parallelMinAvg = 1 << 20

func useParallel(files []statepkg.FileEntry, o options) bool {
	if o.verify {
		// Verification hashes each file's bytes in order.
		return false
	}
	var total int64
	for _, e := range files {
		total += e.Size
	}
	return total >= parallelMinAvg*int64(len(files))
}

// pfile is a file being written by several workers.
type pfile struct {
	e  statepkg.FileEntry
	mu sync.Mutex
	f  *os.File
	// failed is why creating the file failed: the other pieces of the file
	// report it too, rather than a second create's "file exists".
	failed error
	left   atomic.Int64 // bytes not yet written
}

// fetchFilesParallel writes the regular files (in stream order) into
// staging: workers fetch and verify the chunks covering them and write each
// chunk's pieces at their offsets; the worker writing a file's last bytes
// sets its owner, mode and mtime and closes it.
func fetchFilesParallel(ctx context.Context, c statepkg.Component, files []statepkg.FileEntry, src driver.ChunkVisitor, w *stagingWriter, p driver.Progress) (int64, int64, error) {
	pf := make([]*pfile, 0, len(files))
	var done, files64 atomic.Int64
	countFile := func() {
		done.Add(1)
		if files64.Add(1)%64 == 0 {
			p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Files: 64})
		}
	}
	for _, e := range files {
		if e.Size == 0 {
			fd, err := w.open(e)
			if err == nil {
				err = w.finish(e, fd)
			}
			if err != nil {
				return 0, done.Load(), err
			}
			countFile()
			continue
		}
		if dir, _ := w.loc(e.Path); dir != "." {
			if err := w.mkdir(dir); err != nil {
				return 0, done.Load(), err
			}
		}
		f := &pfile{e: e}
		f.left.Store(e.Size)
		pf = append(pf, f)
	}
	w.close()
	sort.SliceStable(pf, func(i, j int) bool { return pf[i].e.DataOffset < pf[j].e.DataOffset })
	// The chunks covering the files, each once, in stream order.
	var chunks []statepkg.Chunk
	for _, f := range pf {
		for _, ch := range c.CoveringChunks(f.e.DataOffset, f.e.Size) {
			if len(chunks) == 0 || ch.Offset > chunks[len(chunks)-1].Offset {
				chunks = append(chunks, ch)
			}
		}
	}

	var written, pend atomic.Int64
	flush := func() {
		if n := pend.Swap(0); n > 0 {
			p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Bytes: n})
		}
	}
	err := src.VisitChunks(ctx, chunks, func(ch statepkg.Chunk, data []byte) error {
		end := ch.Offset + ch.Size
		k := sort.Search(len(pf), func(k int) bool { return pf[k].e.DataOffset+pf[k].e.Size > ch.Offset })
		for ; k < len(pf) && pf[k].e.DataOffset < end; k++ {
			f := pf[k]
			lo, hi := max(f.e.DataOffset, ch.Offset), min(f.e.DataOffset+f.e.Size, end)
			if hi <= lo {
				continue
			}
			if err := f.write(w, data[lo-ch.Offset:hi-ch.Offset], lo-f.e.DataOffset); err != nil {
				return err
			}
			if f.left.Add(lo-hi) == 0 {
				if err := f.finish(w); err != nil {
					return err
				}
				countFile()
			}
		}
		written.Add(ch.Size)
		if pend.Add(ch.Size) >= 1<<20 {
			flush()
		}
		return nil
	})
	flush()
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Files: files64.Load() % 64})
	for _, f := range pf {
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
		if err == nil && f.left.Load() != 0 {
			err = fmt.Errorf("%s: %d of its %d bytes were not in the fetched chunks", f.e.Path, f.left.Load(), f.e.Size)
		}
	}
	return written.Load(), done.Load(), err
}

// write writes b at off, creating the file on first use: exclusively, in a
// staging directory we made (os.Root keeps the path inside staging).
func (f *pfile) write(w *stagingWriter, b []byte, off int64) error {
	f.mu.Lock()
	if f.failed != nil {
		f.mu.Unlock()
		return f.failed
	}
	if f.f == nil {
		fh, err := w.st.OpenFile(w.stagePath(f.e.Path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			f.failed = fmt.Errorf("create %s in staging: %w", f.e.Path, err)
			f.mu.Unlock()
			return f.failed
		}
		// Reserve the space at once: writes arrive out of order, and a
		// full disk fails here rather than halfway.
		if err := fallocate(fh, f.e.Size); err != nil && errors.Is(err, unix.ENOSPC) {
			fh.Close()
			f.failed = fmt.Errorf("create %s in staging: %w", f.e.Path, err)
			f.mu.Unlock()
			return f.failed
		}
		f.f = fh
	}
	fh := f.f
	f.mu.Unlock()
	if _, err := fh.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s: %w", f.e.Path, err)
	}
	return nil
}

// finish sets owner, mode and mtime of a fully written file and closes it.
func (f *pfile) finish(w *stagingWriter) error {
	f.mu.Lock()
	fh := f.f
	f.f = nil
	f.mu.Unlock()
	var err error
	if w.o.chown {
		uid, gid := w.o.owner(f.e)
		err = fh.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears setuid/setgid.
		err = fh.Chmod(fileMode(w.o.mode(f.e)))
	}
	if err == nil {
		err = w.st.Chtimes(w.stagePath(f.e.Path), f.e.MTime, f.e.MTime)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.e.Path, err)
	}
	return nil
}
