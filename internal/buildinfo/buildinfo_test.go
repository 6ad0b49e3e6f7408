package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestGet_LinkerFlagsWin(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "ffff"}, {Key: "vcs.time", Value: "2020-01-01T00:00:00Z"}}}
	got := get("v1.2.3", "abc123", "2026-12-07T17:00:00Z", bi)
	want := Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-12-07T17:00:00Z"}
	if got != want {
		t.Fatalf("get = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "v1.2.3 (commit abc123, built 2026-12-07T17:00:00Z)" {
		t.Fatalf("String = %q", s)
	}
}

func TestGet_FallsBackToTheToolchainsRecord(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "aa8a1d2e1234"}, {Key: "vcs.time", Value: "2026-12-07T17:04:27Z"}}
	tests := []struct {
		name, module, want string
	}{
		{"go install of a release tag", "v1.4.0", "v1.4.0"},
		{"go install of a release candidate", "v1.4.0-rc.1", "v1.4.0-rc.1"},
		{"go build in a checkout", "(devel)", Dev},
		{"pseudo-version of an untagged commit", "v0.0.0-20261207170427-aa8a1d2e1234", Dev},
		{"pseudo-version after a tag", "v1.4.1-0.20261207170427-aa8a1d2e1234", Dev},
		{"dirty checkout", "v1.4.0+dirty", Dev},
		{"nothing recorded", "", Dev},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := get("", "", "", &debug.BuildInfo{Main: debug.Module{Version: tc.module}, Settings: vcs})
			if got.Version != tc.want || got.Commit != "aa8a1d2e1234" || got.Date != "2026-12-07T17:04:27Z" {
				t.Fatalf("get = %+v, want version %s with the VCS commit and time", got, tc.want)
			}
		})
	}
	if got := get("", "", "", nil); got != (Info{Version: Dev}) || got.String() != "dev" || !got.IsDev() {
		t.Fatalf("without build info: %+v %q", got, got.String())
	}
}

func TestMatch_OnlyTheSameVersion(t *testing.T) {
	tests := []struct {
		client, agent string
		want          bool
	}{
		{"v1.2.3", "v1.2.3", true},
		{"dev", "dev", true},
		{"v1.2.3", "v1.2.4", false},
		{"v1.2.3", "dev", false},
		{"dev", "v1.2.3", false},
		{"v1.2.3", "1.2.3", false},
		{"v1.2.3", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got := Match(tc.client, tc.agent); got != tc.want {
			t.Errorf("Match(client %q, agent %q) = %v, want %v", tc.client, tc.agent, got, tc.want)
		}
	}
}
