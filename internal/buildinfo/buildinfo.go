// Package buildinfo is the one place every binary of this module (the
// provider, the helm-state plugin, unikube-platform, unikube-agent) takes
// its version from. A release build sets it with
//
//	-ldflags "-X github.com/unikubehq/terraform-provider-unikube/internal/buildinfo.version=v1.2.3
//	          -X github.com/unikubehq/terraform-provider-unikube/internal/buildinfo.commit=<sha>
//	          -X github.com/unikubehq/terraform-provider-unikube/internal/buildinfo.date=<RFC 3339>"
//
// Without them, Get falls back to what the Go toolchain recorded: the
// module version of `go install ...@v1.2.3`, and the VCS revision and time
// of a build in a checkout. Anything else is a development build, "dev".
package buildinfo

import (
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
)

// Set by the linker (see the package comment); empty in a plain go build.
var (
	version string
	commit  string
	date    string
)

// Dev is the version of a development build: one not cut from a release
// tag (a plain go build, go test, a pseudo-version).
const Dev = "dev"

// Info says which build a binary is.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, commit, date, bi)
}

// get is Get with its inputs passed in (tests).
func get(version, commit, date string, bi *debug.BuildInfo) Info {
	i := Info{Version: version, Commit: commit, Date: date}
	if bi != nil {
		if i.Version == "" && releaseVersion(bi.Main.Version) {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = Dev
	}
	return i
}

// pseudo matches the timestamp-and-commit part of a Go pseudo-version
// (v0.0.0-20261207170427-aa8a1d2e1234): a build of an untagged commit.
var pseudo = regexp.MustCompile(`(^|[-.])(0\.)?\d{14}-[0-9a-f]{12}(\+|$)`)

// releaseVersion says whether a module version from the Go toolchain names
// a release (v1.2.3, v1.3.0-rc.1) rather than a local build ("(devel)", a
// pseudo-version, "+dirty").
func releaseVersion(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.Contains(v, "+") && !pseudo.MatchString(v)
}

// String is the one-line form the version commands print:
// "v1.2.3 (commit 1a2b3c4, built 2026-01-02T03:04:05Z)".
func (i Info) String() string {
	var extra []string
	if i.Commit != "" {
		extra = append(extra, "commit "+i.Commit)
	}
	if i.Date != "" {
		extra = append(extra, "built "+i.Date)
	}
	if len(extra) == 0 {
		return i.Version
	}
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(extra, ", "))
}

// IsDev says whether the build is a development build.
func (i Info) IsDev() bool { return i.Version == Dev }

// Match says whether an agent of version agent may work for a client of
// version client. The JSON lines, arguments and data formats between them
// are not versioned separately, so only the same version matches: a
// release only its own release, and a development build ("dev") only
// another development build. An agent that reported nothing never matches.
func Match(client, agent string) bool {
	return agent != "" && client == agent
}
