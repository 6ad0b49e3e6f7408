package imageload

import "os/exec"

func lookPath(n string) (string, bool) {
	p, err := exec.LookPath(n)
	return p, err == nil
}
