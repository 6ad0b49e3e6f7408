package volume

import (
	"strings"
	"testing"
)

func TestMayGiveTo_OnlyRootOrCapChownGiveFilesAway(t *testing.T) {
	for _, tc := range []struct {
		name     string
		id       identity
		uid, gid int
		says     string // "" for allowed
	}{
		{"root gives to anyone", identity{euid: 0}, 1000, 1000, ""},
		{"CAP_CHOWN gives to anyone", identity{euid: 999, capChown: true}, 1000, 1000, ""},
		{"own uid and own group", identity{euid: 999, groups: []int{999, 50}}, 999, 50, ""},
		{"another uid", identity{euid: 999, groups: []int{999}}, 1000, 999, "cannot be given to uid 1000; leave the option out"},
		{"a group it is not in", identity{euid: 999, groups: []int{999}}, 999, 1000, "not in group 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.mayGiveTo(tc.uid, tc.gid)
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("got %v, want an error saying %q", err, tc.says)
			}
		})
	}
}
