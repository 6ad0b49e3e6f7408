package volume

// macOS equivalents of sys_linux.go: Stat_t's mode is 16 bits wide and its
// times are named *timespec; there is no getdents (the portable listing of
// listdir_unix.go serves) and no fallocate (files are not preallocated,
// which only costs fragmentation).

import (
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func fromStat(st *unix.Stat_t) finfo {
	return finfo{
		typ: uint32(st.Mode) & unix.S_IFMT, size: st.Size,
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
		uid:   int(st.Uid), gid: int(st.Gid), mode: uint32(st.Mode) & 0o7777, ino: st.Ino,
	}
}

func lstatInfo(root *os.Root, p string) (finfo, error) {
	fi, err := root.Lstat(p)
	if err != nil {
		return finfo{}, err
	}
	var st unix.Stat_t
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st = unix.Stat_t{Mode: sys.Mode, Size: sys.Size, Uid: sys.Uid, Gid: sys.Gid, Ino: sys.Ino}
		st.Mtim = unix.NsecToTimespec(fi.ModTime().UnixNano())
	}
	return fromStat(&st), nil
}

func permBits(st *unix.Stat_t) uint32 { return uint32(st.Mode) & 0o7777 }

func statCtime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctimespec.Unix())
	}
	return time.Time{}
}

func statOf(fi fs.FileInfo) (sysStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return sysStat{}, false
	}
	return sysStat{
		uid: int(st.Uid), gid: int(st.Gid), mode: uint32(st.Mode) & 0o7777,
		nlink: uint64(st.Nlink), dev: uint64(st.Dev), ino: st.Ino,
	}, true
}

func listDir(fd int, top, names bool) (int, []string, error) {
	return listDirPortable(fd, top, names)
}

// fallocate does nothing: macOS has no fallocate (F_PREALLOCATE reserves
// space without extending the file, and the writes that follow extend it
// anyway).
func fallocate(*os.File, int64) error { return nil }
