//go:build linux || darwin

package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

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
