package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Environment variables the agent reads its secrets from.
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

// Line is one JSON line on stdout. The Kubernetes executor parses the
// last "result" or "error" line of the pod's log.
type Line struct {
	Type      string                      `json:"type"` // hello (always the first), start, progress, result, error
	Time      time.Time                   `json:"time"`
	Component string                      `json:"component,omitempty"`
	Progress  []restore.ComponentProgress `json:"progress,omitempty"`
	Result    *restore.ComponentResult    `json:"result,omitempty"`
	Plan      *driver.ComponentPlan       `json:"plan,omitempty"`
	Version   *client.Version             `json:"version,omitempty"`
	// ComponentBlob is the chunk digest under which capture --no-commit
	// stored the captured component's JSON (its chunk list, file index).
	ComponentBlob string `json:"componentBlob,omitempty"`
	// Steps says where the time went, in order (on result and error
	// lines): the agent's own steps and the driver's phases as progress
	// reported them (to the progress interval).
	Steps []Step `json:"steps,omitempty"`
	Error string `json:"error,omitempty"`
	// Unchanged on an error line: the agent failed before it started
	// changing the target (its plan failed), so the target is as it was.
	Unchanged bool `json:"unchanged,omitempty"`
	// Agent on the hello line: the agent's version, which its client
	// checks before it trusts anything else the agent says.
	Agent *buildinfo.Info `json:"agent,omitempty"`
}

// unchangedError marks a failure before the target was touched.
type unchangedError struct{ error }

func (e unchangedError) Unwrap() error { return e.error }

// Step is one timed step of the agent.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// stepClock records how long each step took: a step ends when the next
// begins. Progress callbacks and the main goroutine both move it on.
type stepClock struct {
	mu    sync.Mutex
	steps []Step
	cur   string
	since time.Time
}

func newStepClock(first string) *stepClock {
	return &stepClock{cur: first, since: time.Now()}
}

// enter ends the current step and starts name (nothing when it is the
// current one already).
func (c *stepClock) enter(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == c.cur || name == "" {
		return
	}
	now := time.Now()
	c.steps = append(c.steps, Step{Name: c.cur, Seconds: math.Round(now.Sub(c.since).Seconds()*1000) / 1000})
	c.cur, c.since = name, now
}

// done ends the current step and returns all of them.
func (c *stepClock) done() []Step {
	c.enter("end")
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.steps)
}

// out writes JSON lines; several goroutines may report.
type out struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *out) line(l Line) {
	l.Time = time.Now().UTC()
	b, err := json.Marshal(l)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"error","error":%q}`, err.Error()))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(append(b, '\n'))
}

// run is the whole agent, with its environment passed in for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o := &out{w: stdout}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: unikube-agent restore|capture|install|version [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "unikube-agent", buildinfo.Get())
		return 0
	case "sleep":
		// Keeps an agent pod running without a shell in the image (tests).
		<-ctx.Done()
		return 0
	case "install":
		err = install(args[1:])
	case "restore", "fetch", "capture":
		// The first line says which agent this is, and the agent works only
		// for a client of its own version: before it reads or writes
		// anything.
		self := buildinfo.Get()
		o.line(Line{Type: "hello", Agent: &self})
		if err = checkClient(getenv(EnvClientVersion), self.Version); err != nil {
			break
		}
		switch args[0] {
		case "restore":
			err = restoreCmd(ctx, args[1:], getenv, o, stderr)
		case "fetch":
			err = fetchCmd(ctx, args[1:], getenv, o, stderr)
		default:
			err = captureCmd(ctx, args[1:], getenv, o, stderr)
		}
	default:
		err = fmt.Errorf("unknown command %q: want restore, capture, install or version", args[0])
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		var ue unchangedError
		o.line(Line{Type: "error", Error: err.Error(), Unchanged: errors.As(err, &ue)})
		return 1
	}
	return 0
}

// checkClient refuses a client of another version (see buildinfo.Match);
// a run without a client version (by hand, old Jobs) is not checked.
func checkClient(client, self string) error {
	if client == "" || buildinfo.Match(client, self) {
		return nil
	}
	return unchangedError{fmt.Errorf("this agent is version %s but its client is version %s: "+
		"client and agent must be the same version; run the agent image tagged %s (nothing was read or changed)", self, client, client)}
}

// install copies this executable to dest (mode 0755): the init container
// of a Job puts the agent into an emptyDir shared with the database image.
func install(args []string) error {
	if len(args) != 1 {
		return errors.New("install: want exactly one destination path")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("install: find own executable: %w", err)
	}
	src, err := os.Open(self)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(args[0], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("install: copy to %s: %w", args[0], err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// common are the flags of restore and capture.
type common struct {
	platform, state, component string
	tokenFile, passwordFile    string
	caFile                     string
	ca                         []byte
	options                    optionFlags
	interval                   time.Duration
	project, name              string
	token, password            string
	retryMax                   int
}

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

func (c *common) register(fs *flag.FlagSet) {
	c.options = optionFlags{}
	fs.StringVar(&c.platform, "platform", "", "platform URL, e.g. http://unikube-platform:8080")
	fs.StringVar(&c.state, "state", "", "named state, project/name")
	fs.StringVar(&c.component, "component", "", "component name")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the platform token (default: $"+EnvToken+")")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding the target's password (default: $"+EnvTargetPassword+")")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM file of CA certificates the platform's certificate may chain to, besides the system's (default: $"+EnvCAFile+")")
	fs.Var(c.options, "option", "driver option key=value (repeatable)")
	fs.DurationVar(&c.interval, "interval", 2*time.Second, "progress interval")
	fs.IntVar(&c.retryMax, "retries", 0, "HTTP retries (default: the client's)")
}

func (c *common) complete(getenv func(string) string) error {
	if c.platform == "" {
		return errors.New("--platform is required")
	}
	p, n, ok := strings.Cut(c.state, "/")
	if !ok {
		return fmt.Errorf("--state %q: want project/name", c.state)
	}
	c.project, c.name = p, n
	if err := statepkg.ValidateName(c.component); err != nil {
		return fmt.Errorf("--component: %w", err)
	}
	var err error
	if c.token, err = secret(c.tokenFile, getenv(EnvToken)); err != nil {
		return fmt.Errorf("platform token: %w", err)
	}
	if c.token == "" {
		return fmt.Errorf("no platform token: set %s or --token-file", EnvToken)
	}
	if c.password, err = secret(c.passwordFile, getenv(EnvTargetPassword)); err != nil {
		return fmt.Errorf("target password: %w", err)
	}
	if c.caFile == "" {
		c.caFile = getenv(EnvCAFile)
	}
	if c.caFile != "" {
		if c.ca, err = os.ReadFile(c.caFile); err != nil {
			return fmt.Errorf("CA certificate file (--ca-file, %s): %w", EnvCAFile, err)
		}
	}
	return nil
}

func (c *common) client() (*client.Client, error) {
	return client.New(client.Config{Endpoint: c.platform, Token: c.token, RetryMax: c.retryMax, CACertificate: c.ca,
		UserAgent: "unikube-agent/" + buildinfo.Get().Version, Getenv: func(string) string { return "" }})
}

// secret reads path (trimmed) when set, else returns env.
func secret(path, env string) (string, error) {
	if path == "" {
		return env, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// withPassword puts password into a postgres/mysql/redis URL that has none.
func withPassword(raw, password string) (string, error) {
	if password == "" {
		return raw, nil
	}
	if _, ok := driver.LocalPath(raw); ok {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("target URL: %w", err)
	}
	user := ""
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return raw, nil
		}
		user = u.User.Username()
	}
	if user == "" && (u.Scheme == "redis" || u.Scheme == "rediss") {
		user = "default"
	}
	u.User = url.UserPassword(user, password)
	return u.String(), nil
}

func restoreCmd(ctx context.Context, args []string, getenv func(string) string, o *out, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var digest, target string
	fs.StringVar(&digest, "version", "", "version digest sha256:<hex> (or a tag)")
	fs.StringVar(&target, "target", "", "target URL: postgres://, mysql://, redis://, file:///path")
	readConc := fs.Int("read-concurrency", defaultReadConcurrency, "chunks fetched from the platform at once (many small HTTP requests: latency, not bandwidth, bounds a few)")
	planOnly := fs.Bool("plan-only", false, "only plan: check the target (reachable, credentials, versions) and say what restore would do")
	force := fs.Bool("force", false, "re-apply even when the target's marker says it already holds this version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.complete(getenv); err != nil {
		return err
	}
	if digest == "" || target == "" {
		return errors.New("--version and --target are required")
	}
	targetURL, err := withPassword(target, c.password)
	if err != nil {
		return err
	}
	// A first line at once: watchers see the agent is up before any work.
	o.line(Line{Type: "start", Component: c.component})
	clock := newStepClock("manifest")
	defer func() {
		if err != nil {
			// The error line run writes next is the last; this one keeps
			// the timings of a failed restore for the log tail.
			o.line(Line{Type: "steps", Component: c.component, Steps: clock.done()})
		}
	}()
	cl, err := c.client()
	if err != nil {
		return err
	}
	m, dg, err := cl.GetManifest(ctx, c.project, c.name, digest)
	if err != nil {
		return unchangedError{fmt.Errorf("manifest of %s@%s: %w", c.state, digest, err)}
	}
	clock.enter("plan")
	plan, err := restore.Plan(ctx, m, dg, restore.Targets{c.component: {URL: targetURL, Options: c.options}},
		cl.Chunks(c.project, c.name), restore.PlanOptions{SkipUnmapped: true, Force: *force})
	if err != nil {
		return unchangedError{err}
	}
	if len(plan.Components) != 1 {
		return fmt.Errorf("version %s has no component %q", dg, c.component)
	}
	if *planOnly {
		o.line(Line{Type: "result", Component: c.component, Plan: &plan.Components[0].ComponentPlan, Steps: clock.done()})
		return nil
	}
	clock.enter("start")
	res, err := restore.Apply(ctx, plan, restore.ApplyOptions{Concurrency: 1, Interval: c.interval, ReadConcurrency: *readConc,
		Progress: func(e restore.Event) {
			for _, p := range e.Components {
				if p.Phase != "pending" {
					clock.enter(p.Phase)
				}
			}
			o.line(Line{Type: "progress", Component: c.component, Progress: e.Components})
		}})
	if res != nil && len(res.Components) == 1 {
		r := res.Components[0]
		if err == nil {
			o.line(Line{Type: "result", Component: c.component, Result: &r, Steps: clock.done()})
		}
	}
	return err
}

// defaultReadConcurrency is how many chunks a restore fetches at once. The
// platform serves chunks of ~64 KiB one per request, so throughput is
// requests in flight ÷ round trip; 2 (the restore core's default on a
// 2-CPU pod) left most of the link idle.
const defaultReadConcurrency = 16

func captureCmd(ctx context.Context, args []string, getenv func(string) string, o *out, stderr io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var source, kind, tag, revision, message string
	fs.StringVar(&source, "source", "", "source URL: postgres://, mysql://, redis://, file:///path")
	fs.StringVar(&kind, "kind", "", "component kind (default: from the source)")
	fs.StringVar(&tag, "tag", statepkg.ExprNewCandidate, "tag of the new version")
	fs.StringVar(&revision, "revision", "", "revision label")
	fs.StringVar(&message, "message", "", "version message")
	noCommit := fs.Bool("no-commit", false, "upload the chunks and the component description, but commit no version (the executor commits one version of all components)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.complete(getenv); err != nil {
		return err
	}
	if source == "" {
		return errors.New("--source is required")
	}
	srcURL, err := withPassword(source, c.password)
	if err != nil {
		return err
	}
	if p, ok := driver.LocalPath(srcURL); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		srcURL = "file://" + abs
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var bytes int64
	last := time.Now()
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: c.component, Kind: statepkg.Kind(kind), URL: srcURL, Options: c.options}},
		cl.Chunks(c.project, c.name), capture.Spec{State: c.state, Revision: revision, Message: message, Concurrency: 1,
			Progress: func(e driver.Event) {
				mu.Lock()
				defer mu.Unlock()
				bytes += e.Bytes
				if time.Since(last) >= c.interval {
					last = time.Now()
					o.line(Line{Type: "progress", Component: c.component, Progress: []restore.ComponentProgress{{Component: c.component, Phase: e.Phase, Bytes: bytes}}})
				}
			}})
	if err != nil {
		return err
	}
	if *noCommit {
		b, err := json.Marshal(m.Components[0])
		if err != nil {
			return fmt.Errorf("encode component: %w", err)
		}
		digest, compressed := statepkg.EncodeChunk(b)
		if err := cl.Chunks(c.project, c.name).PutForReadBack(ctx, digest, compressed); err != nil {
			return fmt.Errorf("upload the component description: %w", err)
		}
		o.line(Line{Type: "result", Component: c.component, ComponentBlob: digest})
		return nil
	}
	v, err := cl.CommitVersion(ctx, c.project, c.name, tag, m)
	if err != nil {
		return fmt.Errorf("commit version of %s: %w", c.state, err)
	}
	o.line(Line{Type: "result", Component: c.component, Version: &v})
	return nil
}
