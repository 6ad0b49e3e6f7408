package records

import (
	"testing"
	"time"
)

// TestMarkUninstalled_RecordsOfAnEarlierInstallHoldNothing: after a
// reinstall the records written before it are marked uninstalled and no
// longer say what a component holds; a release never reinstalled keeps
// them as they are.
func TestMarkUninstalled_RecordsOfAnEarlierInstallHoldNothing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := []Record{
		{Revision: 1, Status: StatusApplied, Digest: "sha256:a", Time: t0, Components: []Component{{Name: "db"}}},
	}
	if h := Holding(MarkUninstalled(rs, time.Time{})); h["db"] == nil {
		t.Fatalf("no install time: holding %v, want revision 1", h)
	}
	marked := MarkUninstalled(rs, t0.Add(time.Hour))
	if marked[0].Status != StatusUninstalled || rs[0].Status != StatusApplied {
		t.Fatalf("marked %+v, original %+v: want a marked copy", marked[0], rs[0])
	}
	if h := Holding(marked); len(h) != 0 {
		t.Errorf("holding %v after the reinstall, want nothing", h)
	}
	if _, err := RollbackTarget(marked, "", 1); err == nil {
		t.Error("rolled back to a revision of an earlier install")
	}
	later := append(marked, Record{Revision: 2, Status: StatusApplied, Digest: "sha256:b", Time: t0.Add(2 * time.Hour), Components: []Component{{Name: "db"}}})
	if h := Holding(MarkUninstalled(later, t0.Add(time.Hour))); h["db"] == nil || h["db"].Revision != 2 {
		t.Errorf("holding %v, want revision 2 of this install", h)
	}
}
