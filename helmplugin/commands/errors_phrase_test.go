package commands

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestExplain_UnplacedComponentsNameTheMapFlag: the core error names no
// flag; the plugin says which --map places each component.
func TestExplain_UnplacedComponentsNameTheMapFlag(t *testing.T) {
	core := &discovery.MappingError{Release: "shop", Unplaced: []discovery.Unplaced{
		{Component: "db", Kind: statepkg.KindMySQL},
		{Component: "files", Kind: statepkg.KindVolume, Candidates: []string{"shop-logs", "shop-uploads"}},
	}}
	if strings.Contains(core.Error(), "--map") {
		t.Fatalf("core error names the flag: %v", core)
	}
	err := Explain(fmt.Errorf("plan: %w", core))
	want := "release shop: component db (mysql) maps to no workload; component files (volume) maps to several PVCs (shop-logs, shop-uploads)\n" +
		"Pass --map db=StatefulSet/NAME|Deployment/NAME --map files=pvc/NAME"
	if !strings.HasSuffix(err.Error(), want) || !errors.Is(err, core) {
		t.Errorf("explained\n%v\nwant it to end with\n%s", err, want)
	}
	bad := Explain(&discovery.ExplicitMappingError{Component: "db", Target: "StatefulSet/x", Err: errors.New("no StatefulSet x in release shop")})
	if !strings.HasPrefix(bad.Error(), "--map db=StatefulSet/x: ") {
		t.Errorf("explicit mapping: %v", bad)
	}
}

// TestHistoryEntry_DescriptionSaysRollbackAndFailure.
func TestHistoryEntry_DescriptionSaysRollbackAndFailure(t *testing.T) {
	for _, c := range []struct {
		e    HistoryEntry
		want string
	}{
		{HistoryEntry{RollbackOf: 1}, "rollback to revision 1"},
		{HistoryEntry{RollbackOf: 2, Error: "db refused the password"}, "rollback to revision 2: db refused the password"},
		{HistoryEntry{Error: "preflight failed (nothing was changed)"}, "preflight failed (nothing was changed)"},
	} {
		if got := c.e.Description(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}

// TestShownBytes_NeverMoreDoneThanTotal: the planned size is an estimate;
// the total shown grows with what is done.
func TestShownBytes_NeverMoreDoneThanTotal(t *testing.T) {
	for _, c := range []struct {
		cp                   restore.ComponentProgress
		planned, done, total int64
	}{
		{restore.ComponentProgress{Bytes: 50, TotalBytes: 100}, 0, 50, 100},
		{restore.ComponentProgress{Bytes: 150, TotalBytes: 100}, 0, 150, 150},
		{restore.ComponentProgress{Bytes: 150}, 100, 150, 150},
		{restore.ComponentProgress{Bytes: 10}, 0, 10, 0},
		{restore.ComponentProgress{Bytes: -1}, 5, 0, 5},
	} {
		done, total := shownBytes(c.cp, c.planned)
		if done != c.done || total != c.total {
			t.Errorf("%+v planned %d: %d/%d, want %d/%d", c.cp, c.planned, done, total, c.done, c.total)
		}
	}
}
