//go:build !linux

package driver

import "os"

// GrowPipe is a no-op where pipe buffers cannot be resized.
func GrowPipe(*os.File, int) {}
