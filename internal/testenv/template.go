package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// mariadbDataDir fills dataDir with a freshly initialised MariaDB data
// directory. mariadb-install-db takes 5-10 s, so its result is kept once per
// server build and install options under ToolsDir()/templates and copied
// (~35 MB, a fraction of a second) for every later server. The template holds
// no secrets: each server sets its own root password at first start.
func mariadbDataDir(ctx context.Context, installDB, server string, args []string, dataDir string) error {
	install := func(dst string) error {
		return runOnce(ctx, "mariadb-install-db", installDB, append([]string{"--datadir=" + dst}, args...), nil)
	}
	tmpl, err := ensureTemplate(ctx, "mariadb", templateKey([]string{server, installDB}, args), install)
	if err != nil {
		var ie *installError
		if errors.As(err, &ie) {
			return ie.err
		}
		// The cache is an optimisation: without a writable ToolsDir, install directly.
		return install(dataDir)
	}
	if err := copyTree(tmpl, dataDir); err != nil {
		return fmt.Errorf("copy mariadb template %s: %w", tmpl, err)
	}
	return nil
}

// installError marks a failure of the install command itself, as opposed to
// a failure to cache its result.
type installError struct{ err error }

func (e *installError) Error() string { return e.err.Error() }

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

// ensureTemplate returns ToolsDir()/templates/<kind>-<key>/data, creating it
// with install when absent. Creation happens in a private temp dir renamed
// into place, so concurrent test processes never see a half-made template.
func ensureTemplate(ctx context.Context, kind, key string, install func(dst string) error) (string, error) {
	base := filepath.Join(ToolsDir(), "templates")
	final := filepath.Join(base, kind+"-"+key)
	done := filepath.Join(final, ".complete")
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(final, "data"), nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create template cache: %w", err)
	}
	tmp, err := os.MkdirTemp(base, "."+kind+"-tmp-")
	if err != nil {
		return "", fmt.Errorf("create template cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := install(filepath.Join(tmp, "data")); err != nil {
		return "", &installError{err}
	}
	if err := ctx.Err(); err != nil {
		return "", &installError{err}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("mark template complete: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process won the race; its template is as good as ours.
		if _, serr := os.Stat(done); serr == nil {
			return filepath.Join(final, "data"), nil
		}
		return "", fmt.Errorf("publish template %s: %w", final, err)
	}
	return filepath.Join(final, "data"), nil
}

// copyTree copies a directory of regular files and directories, keeping modes.
func copyTree(src, dst string) error {
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
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s: unexpected file type %s in template", path, strings.TrimSpace(info.Mode().Type().String()))
		}
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
	return out.Close()
}
