//go:build linux || darwin

package volume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

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
