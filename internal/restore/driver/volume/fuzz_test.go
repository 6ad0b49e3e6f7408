package volume

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// FuzzValidateIndex feeds the volume index check with indexes written one
// entry a line, "TYPE PATH [LINK]" (TYPE d, f, l, h or any other type
// name taken as is). It must never panic, refuse only with ErrHostileIndex,
// and an index it accepts never has an entry that resolves outside the
// target, as judged by oracleResolve, a resolver written separately from
// the check. testdata/fuzz/FuzzValidateIndex holds each attack of
// TestVolume_RefusesHostileIndex.
func FuzzValidateIndex(f *testing.F) {
	for _, s := range []string{
		"d a\nf a/x\nl a/l x\nh h a/x",
		"l a .\nl b a/..",
		"d d\nl d/l ..\nl m d/l/..",
		"l a b\nl b a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := parseIndexLines(s)
		err := validateIndex(c)
		if err != nil {
			if !errors.Is(err, ErrHostileIndex) {
				t.Fatalf("refusal %v does not wrap ErrHostileIndex", err)
			}
			return
		}
		links := map[string]string{}
		kinds := map[string]string{}
		for _, e := range c.Files {
			kinds[e.Path] = e.Type
			if e.Type == statepkg.FileSymlink {
				links[e.Path] = e.Linkname
			}
		}
		for _, e := range c.Files {
			// Every entry is written at its own path: no symlink on the
			// way to it.
			if dir := path.Dir(e.Path); dir != "." {
				if got, inside := oracleResolve(links, dir); !inside || got != dir {
					t.Fatalf("accepted entry %q whose directory resolves to %q (inside: %v)", e.Path, got, inside)
				}
			}
			switch e.Type {
			case statepkg.FileSymlink:
				// Not path.Join: that would clean the text lexically,
				// which is what a link through ".." defeats.
				from := e.Linkname
				if dir := path.Dir(e.Path); dir != "." {
					from = dir + "/" + e.Linkname
				}
				if got, inside := oracleResolve(links, from); !inside {
					t.Fatalf("accepted symlink %q -> %q, which resolves outside the target (%q)", e.Path, e.Linkname, got)
				}
			case statepkg.FileHardlink:
				got, inside := oracleResolve(links, e.Linkname)
				if !inside || got != e.Linkname || kinds[got] != statepkg.FileRegular {
					t.Fatalf("accepted hardlink %q -> %q, which resolves to %q (inside: %v, a %q)", e.Path, e.Linkname, got, inside, kinds[got])
				}
			}
		}
	})
}

// parseIndexLines builds a component from "TYPE PATH [LINK]" lines.
func parseIndexLines(s string) statepkg.Component {
	c := statepkg.Component{Name: "files", Kind: statepkg.KindVolume, Format: Format, Size: 1}
	for line := range strings.Lines(s) {
		typ, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		p, link, _ := strings.Cut(rest, " ")
		e := statepkg.FileEntry{Path: p, Linkname: link, Mode: 0o644, SHA256: strings.Repeat("0", 64)}
		switch typ {
		case "d":
			e.Type = statepkg.FileDir
		case "f":
			e.Type = statepkg.FileRegular
		case "l":
			e.Type = statepkg.FileSymlink
		case "h":
			e.Type = statepkg.FileHardlink
		default:
			e.Type = typ
		}
		c.Files = append(c.Files, e)
	}
	return c
}

// oracleResolve follows p (relative to the target's top) the textbook way:
// a list of components still to walk, each symlink met replaced by its
// target's components in front of the rest; a name the index lacks counts
// as a directory. It returns where the walk ends and whether it stayed
// inside; a walk that follows more than 1000 links (a loop, which the
// kernel refuses) stays inside.
func oracleResolve(links map[string]string, p string) (string, bool) {
	todo := strings.Split(p, "/")
	var at []string
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return "..", false
			}
			at = at[:len(at)-1]
			continue
		}
		here := strings.Join(append(append([]string(nil), at...), name), "/")
		target, isLink := links[here]
		if !isLink {
			at = append(at, name)
			continue
		}
		if hops++; hops > 1000 {
			return here, true
		}
		if strings.HasPrefix(target, "/") {
			return target, false
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return strings.Join(at, "/"), true
}
