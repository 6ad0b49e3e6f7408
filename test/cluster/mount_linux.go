package cluster

import "syscall"

// detachMount unmounts mp lazily (MNT_DETACH), even while it is busy.
func detachMount(mp string) error { return syscall.Unmount(mp, syscall.MNT_DETACH) }
