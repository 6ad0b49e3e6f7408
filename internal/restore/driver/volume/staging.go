//go:build linux || darwin

package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

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
