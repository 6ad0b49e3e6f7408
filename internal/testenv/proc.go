package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready; generous
// because test runs share two cores with compilers and other servers.
const startTimeout = 90 * time.Second

// setupTimeout bounds initdb and mariadb-install-db.
const setupTimeout = 3 * time.Minute

// stopTimeout bounds a graceful shutdown before the group is killed.
const stopTimeout = 15 * time.Second

// NotInstalledError says a server binary could not be found anywhere testenv
// looks. It is the only reason a Start* helper skips a test.
type NotInstalledError struct {
	Binary string   // e.g. "mariadbd"
	Looked []string // directories searched besides PATH
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("%s not found in PATH or %s; run `make tools` (scripts/install-deps.sh) to install it",
		e.Binary, strings.Join(e.Looked, ", "))
}

// ToolsDir is where `make tools` installs Go tools (under bin/):
// $UNIKUBE_TOOLS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/unikube-state.
func ToolsDir() string {
	if d := os.Getenv("UNIKUBE_TOOLS_DIR"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "unikube-state")
}

// postgresBinDirs lists /usr/lib/postgresql/*/bin, highest major version first.
func postgresBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return n
	}
	sort.SliceStable(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return matches
}

// findBinary looks for name in the preferred dirs first, then PATH, then the
// usual sbin dirs and ToolsDir()/bin.
func findBinary(name string, preferred ...string) (string, error) {
	isExec := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	for _, d := range preferred {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	extra := []string{"/usr/sbin", "/usr/local/sbin", "/sbin", filepath.Join(ToolsDir(), "bin")}
	for _, d := range extra {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	return "", &NotInstalledError{Binary: name, Looked: append(append([]string{}, preferred...), extra...)}
}

// randomSecret returns a URL-safe random string for passwords and keys.
func randomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux; keep going with a fixed value
		// rather than panicking, the server is loopback-only anyway.
		return strings.Repeat("x", 2*n)
	}
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a free loopback TCP port. Another process may
// take it before the server binds it; callers retry on "address in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("find a free loopback port: unexpected address %v", l.Addr())
	}
	return addr.Port, nil
}

// makeDir creates a fresh directory for one server under parent (os.TempDir()
// when empty). Names are short because unix socket paths are limited to 107
// bytes.
func makeDir(parent, prefix string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", parent, err)
	}
	d, err := os.MkdirTemp(parent, "ukt-"+prefix+"-")
	if err != nil {
		return "", fmt.Errorf("create temp dir for %s: %w", prefix, err)
	}
	return d, nil
}

// procSpec describes one server process.
type procSpec struct {
	name    string // for messages, e.g. "postgres"
	path    string
	args    []string
	env     []string // added to a minimal environment
	dir     string
	logPath string
	cred    *syscall.Credential // nil: run as the current user
	stopSig syscall.Signal      // graceful shutdown signal (SIGTERM when 0)
	// startTimeout replaces the package's startTimeout for a server that
	// starts slower (a JVM).
	startTimeout time.Duration
}

// process is a running server.
type process struct {
	spec    procSpec
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
	once    sync.Once
	stopErr error
}

// baseEnv is the environment for children: nothing secret from ours leaks in.
func baseEnv(extra []string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "LC_ALL=C", "TZ=UTC"}
	if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return append(env, extra...)
}

// startProcess starts spec with stdout+stderr going to spec.logPath.
func startProcess(spec procSpec) (*process, error) {
	lf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", spec.name, err)
	}
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = baseEnv(spec.env)
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = sysProcAttr(spec.cred)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", spec.name, spec.path, err)
	}
	p := &process{spec: spec, cmd: cmd, logFile: lf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has already exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop shuts the server down gracefully, then kills its whole group.
func (p *process) stop() error {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		sig := p.spec.stopSig
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if !p.exited() {
			_ = syscall.Kill(-pgid, sig)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				p.stopErr = fmt.Errorf("%s did not stop within %s after %v; killed it", p.spec.name, stopTimeout, sig)
			}
		}
		// Whatever is left in the group (postgres backends, forks) goes too.
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("kill %s process group %d: %w", p.spec.name, pgid, err))
		}
		<-p.done
	})
	return p.stopErr
}

// logTail returns the last n lines of the server log, for error messages.
func (p *process) logTail(n int) string {
	return fileTail(p.spec.logPath, n)
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// errAddrInUse marks a start that lost the race for its port; callers retry.
var errAddrInUse = errors.New("address already in use")

// waitReady polls check until it succeeds, the process exits, ctx ends or
// startTimeout passes. Errors carry the log tail.
func (p *process) waitReady(ctx context.Context, check func(ctx context.Context) error) error {
	limit := startTimeout
	if p.spec.startTimeout > 0 {
		limit = p.spec.startTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			tail := p.logTail(30)
			err := fmt.Errorf("%s exited during startup (%v); log %s:\n%s", p.spec.name, p.waitErr, p.spec.logPath, tail)
			if strings.Contains(strings.ToLower(tail), "address already in use") {
				return errors.Join(errAddrInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (last check: %v); log %s:\n%s",
				p.spec.name, limit, last, p.spec.logPath, p.logTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runOnce runs a setup command (initdb, mariadb-install-db) to completion,
// with the same process attributes as servers, returning its output on error.
func runOnce(ctx context.Context, name, path string, args []string, cred *syscall.Credential) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = baseEnv(nil)
	cmd.SysProcAttr = sysProcAttr(cred)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w\n%s", name, err, lastLines(out.String(), 30))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startWithPortRetry calls start with fresh free ports until one is not lost
// to a concurrent process (a few attempts).
func startWithPortRetry[T any](start func(port int) (T, error)) (T, error) {
	var zero T
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		var port int
		port, err = freePort()
		if err != nil {
			return zero, err
		}
		var v T
		v, err = start(port)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, errAddrInUse) {
			return zero, err
		}
	}
	return zero, err
}

// Missing skips the test for a dependency that is not installed, naming
// it, or fails it under UNIKUBE_TESTENV_REQUIRE=1 (`make test`, which
// installs everything first), so a missing part never passes as a skip.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("UNIKUBE_TESTENV_REQUIRE") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// handle turns a Run* result into the Start* behaviour: skip when the binary
// is missing (unless UNIKUBE_TESTENV_REQUIRE=1), fail on any other error,
// stop at cleanup.
func handle(t testing.TB, what string, stop func() error, err error) {
	t.Helper()
	if err != nil {
		var ni *NotInstalledError
		if errors.As(err, &ni) {
			Missing(t, "testenv: %s is not installed: %v", what, err)
		}
		t.Fatalf("testenv: start %s: %v", what, err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("testenv: stop %s: %v", what, err)
		}
	})
}

// stopper combines stopping a process with removing its directory.
func stopper(p *process, dir string) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if p != nil {
				err = p.stop()
			}
			if rerr := os.RemoveAll(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rerr))
			}
		})
		return err
	}
}
