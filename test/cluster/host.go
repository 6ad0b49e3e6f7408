package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setupNetwork gives the node an address the kubelet and API server accept:
// a tap device with a /32 (there is no dummy link type on these VMs).
func (c *Config) setupNetwork(ctx context.Context) error {
	if !linkExists(tapName) {
		if _, err := run(ctx, "ip", "tuntap", "add", tapName, "mode", "tap"); err != nil {
			return fmt.Errorf("create node device: %w", err)
		}
	}
	if _, err := run(ctx, "ip", "addr", "replace", nodeIP.String()+"/32", "dev", tapName); err != nil {
		return fmt.Errorf("address node device: %w", err)
	}
	if _, err := run(ctx, "ip", "link", "set", tapName, "up"); err != nil {
		return fmt.Errorf("bring node device up: %w", err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ip forwarding: %w", err)
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// cleanupNetwork removes the devices and the iptables state the cluster made.
func (c *Config) cleanupNetwork(ctx context.Context) []error {
	var errs []error
	for _, l := range []string{tapName, bridgeName} {
		if linkExists(l) {
			if _, err := run(ctx, "ip", "link", "del", l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// kube-proxy's own clean-up; it also tries ipvs and nftables, whose tools
	// are not installed, and so exits non-zero: cleanupChains checks the result.
	if bin := c.k8sBin("kube-proxy"); fileExists(bin) {
		_, _ = run(ctx, bin, "--cleanup")
	}
	errs = append(errs, cleanupChains(ctx)...)
	return errs
}

// cleanupChains removes what kube-proxy, the kubelet and the CNI bridge
// plugin left in iptables and ip6tables: every KUBE-* chain, and the per-pod
// CNI-* masquerade chains of our pod subnet (pods killed without a CNI DEL).
// Jumps from the built-in chains are deleted by line number, last first.
func cleanupChains(ctx context.Context) []error {
	var errs []error
	subnet := strings.TrimSuffix(podCIDR.Addr().String(), "0") // "10.214.0."
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"nat", "filter", "mangle"} {
			out, err := run(ctx, bin, "-w", "-t", table, "-S")
			if err != nil {
				continue
			}
			ours := map[string]bool{}
			for _, line := range strings.Split(string(out), "\n") {
				if ch, ok := strings.CutPrefix(line, "-N "); ok && strings.HasPrefix(ch, "KUBE-") {
					ours[ch] = true
				}
			}
			for _, builtin := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
				out, err := run(ctx, bin, "-w", "-t", table, "-L", builtin, "-n", "--line-numbers")
				if err != nil {
					continue
				}
				lines := strings.Split(string(out), "\n")
				for i := len(lines) - 1; i >= 0; i-- {
					f := strings.Fields(lines[i])
					if len(f) < 2 {
						continue
					}
					if _, err := strconv.Atoi(f[0]); err != nil {
						continue
					}
					target := f[1]
					mine := strings.HasPrefix(target, "KUBE-") ||
						strings.HasPrefix(target, "CNI-") && strings.Contains(lines[i], subnet)
					if !mine {
						continue
					}
					if _, err := run(ctx, bin, "-w", "-t", table, "-D", builtin, f[0]); err != nil {
						errs = append(errs, err)
					}
					ours[target] = true
				}
			}
			for ch := range ours {
				_, _ = run(ctx, bin, "-w", "-t", table, "-F", ch)
			}
			for ch := range ours {
				if _, err := run(ctx, bin, "-w", "-t", table, "-X", ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errs
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll detaches every mount below dir (kubelet volumes, container
// rootfs overlays, network namespaces).
func unmountAll(dir string) []error {
	var errs []error
	for i := 0; i < 5; i++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			if err := detachMount(mp); err != nil && i == 4 {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errs
}

// killCgroup kills every process in the kubelet's pod cgroups (in every v1
// hierarchy and the unified one) and removes the cgroups, for pods that
// outlived their shims.
func killCgroup() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if fileExists("/sys/fs/cgroup/kubepods") {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	for round := 0; round < 20; round++ {
		found := false
		for _, root := range roots {
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					killProcs(filepath.Join(p, "cgroup.procs"), &found)
				}
				return nil
			})
		}
		if !found {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}

// killProcs SIGKILLs every pid a cgroup.procs file lists.
func killProcs(procs string, found *bool) {
	b, _ := os.ReadFile(procs)
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			*found = true
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
