package agentproto

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Environment variables the agent reads its secrets and its client's
// version from: secrets never go on its command line.
const (
	EnvToken          = "UNIKUBE_TOKEN"
	EnvTargetPassword = "UNIKUBE_TARGET_PASSWORD"
	// EnvCAFile names a PEM file of CA certificates to trust besides the
	// system's (the Job mounts the apply's bundle and sets it).
	EnvCAFile = client.EnvCAFile
	// EnvClientVersion is the version of the client that started the Job:
	// the agent refuses to work for a client of another version.
	EnvClientVersion = "UNIKUBE_CLIENT_VERSION"
)

// ScratchDir is the writable directory every agent pod has (an emptyDir;
// HOME and TMPDIR point at it): what a driver stages goes there.
const ScratchDir = "/unikube/tmp"

// JobInterval is the progress interval of the agents the Jobs run: a
// watcher sees progress every second.
const JobInterval = time.Second

// Common are the flags of every agent command that talks to the platform.
type Common struct {
	Platform  string // platform URL
	State     string // project/name
	Component string
	// Kind of the component: capture's --kind, and for every command what
	// decides the driver's pod needs (see driver.PodNeeds).
	Kind statepkg.Kind
	// Options are the driver's options (--option key=value).
	Options map[string]string
	// Interval between progress lines (0: the agent's default, 2s).
	Interval time.Duration

	// By hand only (a Job passes secrets through the environment):
	TokenFile, PasswordFile, CAFile string
	Retries                         int
}

// Restore is `unikube-agent restore`: one component of a version onto
// its target, or only its plan.
type Restore struct {
	Common
	Version string // digest (or tag)
	Target  string // postgres://, mysql://, redis://, file:///path
	// PlanOnly: check the target and say what restore would do.
	PlanOnly bool
	// Force re-applies even when the target's marker holds this version.
	Force bool
	// ReadConcurrency: chunks fetched at once (0: the agent's default).
	ReadConcurrency int
}

// Capture is `unikube-agent capture`: one component from a live source.
type Capture struct {
	Common
	Source            string
	Tag               string // default statepkg.ExprNewCandidate
	Revision, Message string
	// NoCommit uploads the chunks and the component's description but
	// commits no version (the executor commits one of all components).
	NoCommit bool
}

// Fetch is `unikube-agent fetch`: one component of a version written into
// a directory (the init container of a script's Job).
type Fetch struct {
	Common
	Version string
	Dest    string
}

// Args returns the command line of r (after the agent binary).
func (r Restore) Args() []string {
	a := append([]string{"restore"}, r.common()...)
	a = append(a, "--version", r.Version, "--target", r.Target)
	if r.PlanOnly {
		a = append(a, "--plan-only")
	}
	if r.Force {
		a = append(a, "--force")
	}
	if r.ReadConcurrency > 0 {
		a = append(a, "--read-concurrency", strconv.Itoa(r.ReadConcurrency))
	}
	return a
}

// Args returns the command line of c (after the agent binary).
func (c Capture) Args() []string {
	a := append([]string{"capture"}, c.common()...)
	a = append(a, "--source", c.Source)
	a = set(a, "--kind", string(c.Kind))
	a = set(a, "--tag", c.Tag)
	a = set(a, "--revision", c.Revision)
	a = set(a, "--message", c.Message)
	if c.NoCommit {
		a = append(a, "--no-commit")
	}
	return a
}

// Args returns the command line of f (after the agent binary).
func (f Fetch) Args() []string {
	a := append([]string{"fetch"}, f.common()...)
	return append(a, "--version", f.Version, "--dest", f.Dest)
}

// common renders the shared flags, the options sorted (a seed Job's
// template must not change from one render to the next) and the driver's
// pod needs added where the caller set nothing else.
func (c Common) common() []string {
	a := []string{"--platform", c.Platform, "--state", c.State, "--component", c.Component}
	opts := PodOptions(c.Kind, c.Options)
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		a = append(a, "--option", k+"="+opts[k])
	}
	if c.Interval > 0 {
		a = append(a, "--interval", c.Interval.String())
	}
	a = set(a, "--token-file", c.TokenFile)
	a = set(a, "--password-file", c.PasswordFile)
	a = set(a, "--ca-file", c.CAFile)
	if c.Retries > 0 {
		a = append(a, "--retries", strconv.Itoa(c.Retries))
	}
	return a
}

// set adds flag name with value when value is set (the agent's default
// stands otherwise).
func set(a []string, name, value string) []string {
	if value == "" {
		return a
	}
	return append(a, name, value)
}

// PodOptions returns opts plus the options the driver of kind needs in an
// agent pod (driver.PodNeeds); an option the caller set wins.
func PodOptions(kind statepkg.Kind, opts map[string]string) map[string]string {
	out := maps.Clone(opts)
	if out == nil {
		out = map[string]string{}
	}
	d, err := restore.DefaultRegistry().Get(kind)
	if err != nil {
		return out
	}
	if pn, ok := d.(driver.PodNeeds); ok {
		for k, v := range pn.PodOptions(ScratchDir) {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	}
	return out
}

// DefaultAgentInterval is the progress interval when none is given.
const DefaultAgentInterval = 2 * time.Second

type optionFlags map[string]string

func (f optionFlags) String() string { return "" }
func (f optionFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("option %q: want key=value", s)
	}
	f[k] = v
	return nil
}

func (c *Common) register(fs *flag.FlagSet) {
	c.Options = map[string]string{}
	fs.StringVar(&c.Platform, "platform", "", "platform URL, e.g. http://unikube-platform:8080")
	fs.StringVar(&c.State, "state", "", "named state, project/name")
	fs.StringVar(&c.Component, "component", "", "component name")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding the platform token (default: $"+EnvToken+")")
	fs.StringVar(&c.PasswordFile, "password-file", "", "file holding the target's password (default: $"+EnvTargetPassword+")")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM file of CA certificates the platform's certificate may chain to, besides the system's (default: $"+EnvCAFile+")")
	fs.Var(optionFlags(c.Options), "option", "driver option key=value (repeatable)")
	fs.DurationVar(&c.Interval, "interval", DefaultAgentInterval, "progress interval")
	fs.IntVar(&c.Retries, "retries", 0, "HTTP retries (default: the client's)")
}

// Project and Name split State (checked by the Parse functions).
func (c Common) Project() string { p, _, _ := strings.Cut(c.State, "/"); return p }

// Name is the state's name (see Project).
func (c Common) Name() string { _, n, _ := strings.Cut(c.State, "/"); return n }

func (c Common) check() error {
	if c.Platform == "" {
		return errors.New("--platform is required")
	}
	if _, _, ok := strings.Cut(c.State, "/"); !ok {
		return fmt.Errorf("--state %q: want project/name", c.State)
	}
	if err := statepkg.ValidateName(c.Component); err != nil {
		return fmt.Errorf("--component: %w", err)
	}
	return nil
}

// DefaultReadConcurrency is how many chunks a restore fetches at once. The
// platform serves chunks of ~64 KiB one per request, so throughput is
// requests in flight ÷ round trip; 2 (the restore core's default on a
// 2-CPU pod) left most of the link idle.
const DefaultReadConcurrency = 16

// parse reads args into c and the command's own flags, then checks the
// common flags and the command's required ones.
func parse(name string, args []string, usage io.Writer, c *Common, own func(*flag.FlagSet), required func() error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	c.register(fs)
	own(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	return required()
}

// ParseRestore reads the arguments of `restore` (after the command name);
// usage goes to usage. It returns flag.ErrHelp for -h.
func ParseRestore(args []string, usage io.Writer) (Restore, error) {
	var r Restore
	err := parse("restore", args, usage, &r.Common, func(fs *flag.FlagSet) {
		fs.StringVar(&r.Version, "version", "", "version digest sha256:<hex> (or a tag)")
		fs.StringVar(&r.Target, "target", "", "target URL: postgres://, mysql://, redis://, file:///path")
		fs.IntVar(&r.ReadConcurrency, "read-concurrency", DefaultReadConcurrency, "chunks fetched from the platform at once (many small HTTP requests: latency, not bandwidth, bounds a few)")
		fs.BoolVar(&r.PlanOnly, "plan-only", false, "only plan: check the target (reachable, credentials, versions) and say what restore would do")
		fs.BoolVar(&r.Force, "force", false, "re-apply even when the target's marker says it already holds this version")
	}, func() error {
		if r.Version == "" || r.Target == "" {
			return errors.New("--version and --target are required")
		}
		return nil
	})
	return r, err
}

// ParseCapture reads the arguments of `capture` (see ParseRestore).
func ParseCapture(args []string, usage io.Writer) (Capture, error) {
	var c Capture
	var kind string
	err := parse("capture", args, usage, &c.Common, func(fs *flag.FlagSet) {
		fs.StringVar(&c.Source, "source", "", "source URL: postgres://, mysql://, redis://, file:///path")
		fs.StringVar(&kind, "kind", "", "component kind (default: from the source)")
		fs.StringVar(&c.Tag, "tag", statepkg.ExprNewCandidate, "tag of the new version")
		fs.StringVar(&c.Revision, "revision", "", "revision label")
		fs.StringVar(&c.Message, "message", "", "version message")
		fs.BoolVar(&c.NoCommit, "no-commit", false, "upload the chunks and the component description, but commit no version (the executor commits one version of all components)")
	}, func() error {
		if c.Source == "" {
			return errors.New("--source is required")
		}
		return nil
	})
	c.Kind = statepkg.Kind(kind)
	return c, err
}

// ParseFetch reads the arguments of `fetch` (see ParseRestore).
func ParseFetch(args []string, usage io.Writer) (Fetch, error) {
	var f Fetch
	err := parse("fetch", args, usage, &f.Common, func(fs *flag.FlagSet) {
		fs.StringVar(&f.Version, "version", "", "version digest sha256:<hex> (or a tag)")
		fs.StringVar(&f.Dest, "dest", "", "directory to write the component into")
	}, func() error {
		if f.Version == "" || f.Dest == "" {
			return errors.New("--version and --dest are required")
		}
		return nil
	})
	return f, err
}
