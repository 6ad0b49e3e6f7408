package testenv

import "syscall"

// sysProcAttr gives the child its own process group (so cleanup can kill its
// children too) and SIGKILL when the test binary dies.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}
