package helmplugin

import (
	"os"
	"testing"
)

// TestMain removes the release snapshot the tests shared.
func TestMain(m *testing.M) {
	code := m.Run()
	CleanupReleases()
	os.Exit(code)
}
