//go:build linux || darwin

package volume

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

type options struct {
	chown    bool
	uid, gid int // -1: from the index
	verify   bool
	// keepSetID keeps setuid/setgid bits (see OptKeepSetID).
	keepSetID bool
	// force rewrites every entry, as if the target held none of them.
	force bool
}

func parseOptions(t driver.Target) (options, error) {
	o := options{chown: os.Geteuid() == 0, uid: -1, gid: -1, verify: t.Option(OptVerify, "") == "true", force: t.Force}
	switch v := t.Option(OptKeepSetID, ""); v {
	case "", "false":
	case "true":
		o.keepSetID = true
	default:
		return o, fmt.Errorf("%s option %q: want true or false", OptKeepSetID, v)
	}
	if own := t.Option(OptOwner, ""); own != "" {
		u, g, ok := strings.Cut(own, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return o, fmt.Errorf("owner option %q: want numeric uid:gid, e.g. 1000:1000", own)
		}
		if err := currentIdentity().mayGiveTo(uid, gid); err != nil {
			return o, fmt.Errorf("owner option %q: %w", own, err)
		}
		o.chown, o.uid, o.gid = true, uid, gid
	}
	return o, nil
}

// identity is who this process is, as far as giving files away goes.
type identity struct {
	euid     int
	groups   []int // effective and supplementary groups
	capChown bool
}

func currentIdentity() identity {
	groups, _ := os.Getgroups()
	return identity{euid: os.Geteuid(), groups: append(groups, os.Getegid()), capChown: hasCapChown()}
}

// mayGiveTo says why files cannot be made owned by uid:gid, or nil when
// they can: root or CAP_CHOWN may give files to anyone; others only keep
// their own uid and choose among their own groups. Checked before anything
// is written, so an apply fails at once rather than on the first file.
func (id identity) mayGiveTo(uid, gid int) error {
	switch {
	case id.euid == 0 || id.capChown:
		return nil
	case uid != id.euid:
		return fmt.Errorf("this restore runs as uid %d without the right to change owners, so files cannot be given to uid %d; leave the option out (files then belong to uid %d: in a cluster, the workload's user) or run the restore as root", id.euid, uid, id.euid)
	case !slices.Contains(id.groups, gid):
		return fmt.Errorf("this restore runs as uid %d, which is not in group %d and cannot give files to it; use one of its groups %v or leave the option out", id.euid, gid, id.groups)
	}
	return nil
}

// hasCapChown reads CAP_CHOWN (bit 0) from the effective capabilities;
// false where they cannot be read.
func hasCapChown() bool {
	v, ok := procStatus("CapEff")
	if !ok {
		return false
	}
	caps, err := strconv.ParseUint(v, 16, 64)
	return err == nil && caps&1 != 0
}

// procStatus returns a field of /proc/self/status, trimmed.
func procStatus(name string) (string, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// mode is the permission bits an entry gets: the index's, less setuid and
// (but on directories) setgid unless they are kept.
func (o options) mode(e statepkg.FileEntry) uint32 {
	m := e.Mode & 0o7777
	switch {
	case o.keepSetID:
	case e.Type == statepkg.FileDir:
		m &^= syscall.S_ISUID
	default:
		m &^= syscall.S_ISUID | syscall.S_ISGID
	}
	return m
}

func (o options) owner(e statepkg.FileEntry) (int, int) {
	uid, gid := e.UID, e.GID
	if o.uid >= 0 {
		uid, gid = o.uid, o.gid
	}
	return uid, gid
}
