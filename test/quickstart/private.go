package quickstart

import (
	"fmt"
	"os"
	"path/filepath"
)

// The quickstart's directory holds the platform's admin token, the tour's
// token, the env file naming the kubeconfig and Terraform's state: it and
// those files are readable by their owner only.

// privateDir creates dir 0700, or narrows it to 0700 when an earlier run
// made it wider.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return ownerOnly(dir)
}

// ownerOnly removes group and other permissions from path.
func ownerOnly(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&0o700); err != nil {
		return fmt.Errorf("make %s readable by its owner only: %w", path, err)
	}
	return nil
}

// writePrivate writes b to path with mode 0600: into a new file (created
// 0600 whatever the umask) renamed over path, so neither a file an earlier
// run left with a wider mode nor a moment before a chmod exposes it.
func writePrivate(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
