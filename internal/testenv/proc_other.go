//go:build !linux

package testenv

import "syscall"

// sysProcAttr gives the child its own process group, so cleanup can kill its
// children too. Outside Linux there is no parent-death signal: a child
// outlives a test binary that dies without cleaning up.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
