package records

import (
	"errors"
	"testing"
)

func rec(rev int, digest, status string, comps ...Component) Record {
	return Record{Revision: rev, Digest: digest, Status: status, Components: comps}
}

func TestRollbackTarget_IsTheLastSuccessfulApplyOfAnotherVersion(t *testing.T) {
	cases := []struct {
		name    string
		rs      []Record
		current string
		want    int // revision; 0 for none
	}{
		{"first apply", []Record{rec(1, "a", StatusApplied)}, "a", 0},
		{"one before", []Record{rec(1, "a", StatusSuperseded), rec(2, "b", StatusApplied)}, "b", 1},
		{"current from the newest applied record", []Record{rec(1, "a", StatusSuperseded), rec(2, "b", StatusApplied)}, "", 1},
		{"failed ones are passed over", []Record{
			rec(1, "a", StatusSuperseded), rec(2, "c", StatusFailed), rec(3, "b", StatusApplied)}, "b", 1},
		{"a failed apply after the current one", []Record{
			rec(1, "a", StatusSuperseded), rec(2, "b", StatusApplied), rec(3, "c", StatusFailed)}, "", 1},
		{"re-applies of the same version are passed over", []Record{
			rec(1, "a", StatusSuperseded), rec(2, "b", StatusSuperseded), rec(3, "b", StatusApplied)}, "b", 1},
		{"only before the current version", []Record{
			rec(1, "a", StatusSuperseded), rec(2, "b", StatusSuperseded), rec(3, "c", StatusApplied)}, "b", 1},
		{"current never recorded", []Record{rec(1, "a", StatusApplied)}, "z", 0},
		{"no records", nil, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RollbackTarget(tc.rs, tc.current, 0)
			switch {
			case tc.want == 0 && !errors.Is(err, ErrNoPrevious):
				t.Errorf("got %+v, %v; want ErrNoPrevious", got, err)
			case tc.want != 0 && (err != nil || got.Revision != tc.want):
				t.Errorf("got %+v, %v; want revision %d", got, err, tc.want)
			}
		})
	}
}

func TestRollbackTarget_ChosenRevisionMustHaveBeenApplied(t *testing.T) {
	rs := []Record{rec(1, "a", StatusSuperseded), rec(2, "b", StatusFailed), rec(3, "c", StatusApplied)}
	if got, err := RollbackTarget(rs, "", 1); err != nil || got.Digest != "a" {
		t.Errorf("revision 1: %+v, %v", got, err)
	}
	var re *RevisionError
	if _, err := RollbackTarget(rs, "", 2); !errors.As(err, &re) || !re.Failed {
		t.Errorf("failed revision 2: %v, want a RevisionError saying it failed", err)
	}
	if _, err := RollbackTarget(rs, "", 9); !errors.As(err, &re) || re.Failed {
		t.Errorf("missing revision 9: %v, want a RevisionError saying there is none", err)
	}
}

func TestHolding_IsTheNewestRecordEachComponentWentThrough(t *testing.T) {
	rs := []Record{
		rec(1, "a", StatusSuperseded, Component{Name: "db"}, Component{Name: "files"}),
		rec(2, "b", StatusApplied, Component{Name: "db"}),                                         // a partial apply
		rec(3, "c", StatusFailed, Component{Name: "db", Error: "boom"}, Component{Name: "cache"}), // cache went through
	}
	h := Holding(rs)
	if h["files"] == nil || h["files"].Digest != "a" {
		t.Errorf("files: %+v, want revision 1 (untouched by the partial apply)", h["files"])
	}
	if _, ok := h["db"]; ok {
		t.Errorf("db: %+v, want none: its newest apply failed", h["db"])
	}
	if h["cache"] == nil || h["cache"].Digest != "c" {
		t.Errorf("cache: %+v, want revision 3", h["cache"])
	}
}
