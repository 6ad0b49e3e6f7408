package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// component is one host process of the cluster.
type component struct {
	name string
	path string
	args []string
	env  []string
}

// pidRecord is what the pid file of a component holds: the pid and the
// process start time, so a recycled pid is never mistaken for ours.
type pidRecord struct {
	name  string
	pid   int
	start string
}

func (c *Config) pidFile(name string) string { return c.state("pids", name+".pid") }

// start runs a component in its own session with its log in the state dir.
func (c *Config) start(p component) error {
	if err := os.MkdirAll(c.state("logs"), 0o755); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	if err := os.MkdirAll(c.state("pids"), 0o755); err != nil {
		return fmt.Errorf("create pid dir: %w", err)
	}
	logf, err := os.OpenFile(c.state("logs", p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	defer logf.Close()
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = c.StateDir
	// Own session: the cluster outlives the `up` command or test that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	pid := cmd.Process.Pid
	st, _ := procStart(pid)
	rec := fmt.Sprintf("%d %s %s\n", pid, st, p.path)
	if err := os.WriteFile(c.pidFile(p.name), []byte(rec), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("write %s pid file: %w", p.name, err)
	}
	// Reap it if it dies while this process lives, so it shows as gone.
	go func() { _ = cmd.Wait() }()
	c.Log.Debug("started", "component", p.name, "pid", pid, "args", argsJoin(p.args))
	return nil
}

// procStart is field 22 of /proc/PID/stat (start time in clock ticks).
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", errors.New("short stat")
	}
	if f[0] == "Z" {
		return "", errors.New("zombie")
	}
	return f[19], nil
}

// records lists the pid files, in start order of the file names.
func (c *Config) records() []pidRecord {
	ents, _ := os.ReadDir(c.state("pids"))
	var out []pidRecord
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.state("pids"), e.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		out = append(out, pidRecord{name: name, pid: pid, start: f[1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (r pidRecord) alive() bool {
	st, err := procStart(r.pid)
	return err == nil && st == r.start
}

// stop ends one component: SIGTERM, then SIGKILL after the grace period.
func (c *Config) stop(ctx context.Context, name string, grace time.Duration) {
	for _, r := range c.records() {
		if r.name != name {
			continue
		}
		if r.alive() {
			_ = syscall.Kill(r.pid, syscall.SIGTERM)
			deadline := time.Now().Add(grace)
			for r.alive() && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			if r.alive() {
				_ = syscall.Kill(r.pid, syscall.SIGKILL)
				for i := 0; i < 100 && r.alive(); i++ {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		_ = os.Remove(c.pidFile(name))
	}
}

// waitFor polls check until it succeeds, the component dies or time runs out.
func (c *Config) waitFor(ctx context.Context, what, component string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if component != "" && !c.componentAlive(component) {
			return fmt.Errorf("%s exited while waiting for %s; see %s: %s", component, what, c.state("logs", component+".log"), c.logTail(component, 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Config) componentAlive(name string) bool {
	for _, r := range c.records() {
		if r.name == name {
			return r.alive()
		}
	}
	return false
}

func (c *Config) logTail(name string, n int) string {
	b, _ := os.ReadFile(c.state("logs", name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processesUsing lists pids whose command line mentions s (our containerd
// socket for shims), excluding this process.
func processesUsing(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}
