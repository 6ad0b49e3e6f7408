package agentproto

import (
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestRestore_ArgsRoundTrip: what a client builds is what the agent reads,
// with the driver's pod needs added (postgres stages in the scratch dir)
// unless the caller chose otherwise.
func TestRestore_ArgsRoundTrip(t *testing.T) {
	in := Restore{Common: Common{Platform: "http://p:8080", State: "shop/seed", Component: "db", Kind: statepkg.KindPostgres,
		Options: map[string]string{"strategy": "swap", "jobs": "4"}, Interval: JobInterval},
		Version: "sha256:abc", Target: "postgres://app@db:5432/app", PlanOnly: true, Force: true}
	args := in.Args()
	if args[0] != "restore" {
		t.Fatalf("args %q", args)
	}
	got, err := ParseRestore(args[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Options = map[string]string{"strategy": "swap", "jobs": "4", "tmpdir": ScratchDir}
	want.Kind = "" // not a flag of restore: only what decides the pod needs
	want.ReadConcurrency = DefaultReadConcurrency
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// Options in a stable order: a seed Job's template must not change.
	if !slices.Equal(args, in.Args()) || !strings.Contains(strings.Join(args, " "), "--option jobs=4 --option strategy=swap --option tmpdir=/unikube/tmp") {
		t.Fatalf("args %q", args)
	}
	in.Options = map[string]string{"tmpdir": "/var/tmp"}
	if a := strings.Join(in.Args(), " "); !strings.Contains(a, "tmpdir=/var/tmp") || strings.Contains(a, ScratchDir) {
		t.Fatalf("the caller's tmpdir lost: %s", a)
	}
}

func TestCaptureAndFetch_ArgsRoundTrip(t *testing.T) {
	c := Capture{Common: Common{Platform: "http://p", State: "shop/seed", Component: "files", Kind: statepkg.KindVolume, Interval: 3 * time.Second},
		Source: "file:///data", NoCommit: true, Tag: "v2", Message: "m"}
	got, err := ParseCapture(c.Args()[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Options = map[string]string{}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("capture round trip:\n got %+v\nwant %+v", got, c)
	}
	f := Fetch{Common: Common{Platform: "http://p", State: "shop/seed", Component: "db"}, Version: "v1", Dest: "/unikube/data"}
	gf, err := ParseFetch(f.Args()[1:], io.Discard)
	if err != nil || gf.Version != "v1" || gf.Dest != "/unikube/data" || gf.Interval != DefaultAgentInterval {
		t.Fatalf("fetch %+v %v", gf, err)
	}
}

// TestParse_RefusesIncompleteCommandLines: each names what is missing.
func TestParse_RefusesIncompleteCommandLines(t *testing.T) {
	base := []string{"--platform", "http://p", "--state", "shop/seed", "--component", "db"}
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"no platform", func() error { _, err := ParseRestore([]string{"--state", "a/b"}, io.Discard); return err }, "--platform is required"},
		{"state without project", func() error {
			_, err := ParseRestore([]string{"--platform", "x", "--state", "seed"}, io.Discard)
			return err
		}, `--state "seed": want project/name`},
		{"bad component", func() error {
			_, err := ParseFetch([]string{"--platform", "x", "--state", "a/b", "--component", "../x"}, io.Discard)
			return err
		}, "--component"},
		{"restore without target", func() error { _, err := ParseRestore(append(base, "--version", "v1"), io.Discard); return err }, "--version and --target are required"},
		{"capture without source", func() error { _, err := ParseCapture(base, io.Discard); return err }, "--source is required"},
		{"option without value", func() error { _, err := ParseRestore(append(base, "--option", "jobs"), io.Discard); return err }, `option "jobs": want key=value`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
