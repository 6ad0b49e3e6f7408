package restore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// A misspelt driver option fails the plan, naming it and what the driver
// takes, instead of being ignored; strategy is taken by every driver.
func TestPlan_RefusesOptionsTheDriverDoesNotTake(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := statepkg.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: "files", URL: src}}, store, capture.Spec{State: "test/state"})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	for _, tc := range []struct {
		opts map[string]string
		says string // "" for accepted
	}{
		{map[string]string{"verify": "true", "owner": "0:0"}, ""},
		{map[string]string{"strategy": "in-place"}, ""},
		{map[string]string{"verfy": "true"}, `unknown volume option "verfy" (the volume driver takes: keep_setid, owner, verify)`},
		{map[string]string{"jobs": "4", "zz": "1"}, `unknown volume option "jobs", "zz"`},
	} {
		_, err := restore.Plan(ctx, m, "sha256:"+strings.Repeat("a", 64), restore.Targets{"files": {URL: target, Options: tc.opts}}, store, restore.PlanOptions{})
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("options %v refused: %v", tc.opts, err)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("options %v: %v, want an error saying %s", tc.opts, err, tc.says)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("planning touched the target: %v", err)
	}
}

func TestCheckOptions_DriversWithoutAListTakeAnything(t *testing.T) {
	if err := driver.CheckOptions(unlisted{}, map[string]string{"anything": "1"}); err != nil {
		t.Fatal(err)
	}
}

type unlisted struct{ driver.Driver }
