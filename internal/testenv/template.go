package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Initialising a data directory (initdb, mariadb-install-db) takes seconds,
// and much longer on a loaded machine; copying one takes a fraction of a
// second. So the first server of each kind keeps a copy of its fresh data
// directory under ToolsDir()/templates/<kind>-<key>/data, and later servers
// (in this and later test runs) start from a copy of it. Templates hold no
// usable secret: each server sets its own password when it starts.

// templateKey identifies a template by the binaries (path, size, mtime) and
// the options that produced it, so a package upgrade makes a new one.
func templateKey(binaries, args []string) string {
	h := sha256.New()
	for _, b := range binaries {
		fmt.Fprintf(h, "%s\x00", b)
		if st, err := os.Stat(b); err == nil {
			fmt.Fprintf(h, "%d\x00%d\x00", st.Size(), st.ModTime().UnixNano())
		}
	}
	for _, a := range args {
		fmt.Fprintf(h, "%s\x00", a)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func templateDir(kind, key string) string {
	return filepath.Join(ToolsDir(), "templates", kind+"-"+key)
}

// lookupTemplate returns the directory of a complete template, if there is one.
func lookupTemplate(kind, key string) (string, bool) {
	d := templateDir(kind, key)
	if _, err := os.Stat(filepath.Join(d, ".complete")); err != nil {
		return "", false
	}
	return d, true
}

// publishTemplate stores a copy of dataDir (plus extra small files) as the
// template. It works in a private temp dir renamed into place, so concurrent
// test processes never see a half-made template. Failing to publish only
// costs speed, so callers may ignore the error.
func publishTemplate(kind, key, dataDir string, extra map[string][]byte) error {
	final := templateDir(kind, key)
	base := filepath.Dir(final)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create template cache: %w", err)
	}
	tmp, err := os.MkdirTemp(base, "."+kind+"-tmp-")
	if err != nil {
		return fmt.Errorf("create template cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := copyTree(dataDir, filepath.Join(tmp, "data"), nil); err != nil {
		return fmt.Errorf("copy %s into template: %w", dataDir, err)
	}
	for name, b := range extra {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return fmt.Errorf("write template file: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return fmt.Errorf("mark template complete: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, ok := lookupTemplate(kind, key); ok {
			return nil // another process published first; theirs is as good
		}
		return fmt.Errorf("publish template %s: %w", final, err)
	}
	return nil
}

// copyTree copies a directory of regular files and directories, keeping
// modes, and hands everything to owner when it is set.
func copyTree(src, dst string, owner *syscall.Credential) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			// Mkdir is subject to the umask; data dirs need their exact mode.
			if err := os.Chmod(target, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected file type %s in template", path, strings.TrimSpace(info.Mode().Type().String()))
		}
		if owner != nil {
			return os.Lchown(target, int(owner.Uid), int(owner.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
