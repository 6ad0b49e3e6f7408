package volume

// The Linux system calls of the volume driver: getdents, fallocate and the
// Linux layout of Stat_t. The other platforms' files (sys_darwin.go,
// sys_other.go) hold portable equivalents.

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func fromStat(st *unix.Stat_t) finfo {
	return finfo{
		typ: st.Mode & unix.S_IFMT, size: st.Size,
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
		uid:   int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777, ino: st.Ino,
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

// permBits returns the permission bits (with setuid, setgid, sticky) of st.
func permBits(st *unix.Stat_t) uint32 { return st.Mode & 0o7777 }

// statCtime returns the ctime of fi, or the zero time when unknown.
func statCtime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return time.Time{}
}

// statOf returns the ownership, mode bits and identity of fi.
func statOf(fi fs.FileInfo) (sysStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return sysStat{}, false
	}
	return sysStat{
		uid: int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777,
		nlink: uint64(st.Nlink),                    //nolint:unconvert // Stat_t.Nlink is narrower on some GOARCHes
		dev:   uint64(st.Dev), ino: uint64(st.Ino), //nolint:unconvert // Stat_t.Dev/Ino are narrower on some GOARCHes (mips)
	}, true
}

// listDir reads the directory open as fd from its start with getdents,
// counting its entries other than . and .. (and, at the top of the target,
// the reserved marker and staging names) and returning their names when
// asked.
func listDir(fd int, top, names bool) (int, []string, error) {
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 32<<10)
	var out []string
	count := 0
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if n <= 0 {
			return count, out, nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				return 0, nil, fmt.Errorf("getdents: bad record length %d", reclen)
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." || (top && reserved(string(name))) {
				continue
			}
			count++
			if names {
				out = append(out, string(name))
			}
		}
	}
}

// fallocate reserves size bytes for f (UNIKUBE_VOLUME_NO_FALLOCATE=1 skips it,
// for measurements).
func fallocate(f *os.File, size int64) error {
	if os.Getenv("UNIKUBE_VOLUME_NO_FALLOCATE") == "1" {
		return nil
	}
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}
