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

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Line and Step: the agent's JSON lines (internal/agentproto).
type (
	Line = agentproto.Line
	Step = agentproto.Step
)

// unchangedError marks a failure before the target was touched.
type unchangedError struct{ error }

func (e unchangedError) Unwrap() error { return e.error }

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
	b := l.Marshal()
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(b)
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
		o.line(Line{Type: agentproto.TypeHello, Agent: &self})
		if err = checkClient(getenv(agentproto.EnvClientVersion), self.Version); err != nil {
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
		o.line(Line{Type: agentproto.TypeError, Error: err.Error(), Unchanged: errors.As(err, &ue)})
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

// common is what every command that talks to the platform needs, its
// flags read by agentproto and its secrets from files or the environment.
type common struct {
	agentproto.Common
	ca              []byte
	project, name   string
	token, password string
}

func (c *common) complete(getenv func(string) string) error {
	c.project, c.name = c.Project(), c.Name()
	var err error
	if c.token, err = secret(c.TokenFile, getenv(agentproto.EnvToken)); err != nil {
		return fmt.Errorf("platform token: %w", err)
	}
	if c.token == "" {
		return fmt.Errorf("no platform token: set %s or --token-file", agentproto.EnvToken)
	}
	if c.password, err = secret(c.PasswordFile, getenv(agentproto.EnvTargetPassword)); err != nil {
		return fmt.Errorf("target password: %w", err)
	}
	if c.CAFile == "" {
		c.CAFile = getenv(agentproto.EnvCAFile)
	}
	if c.CAFile != "" {
		if c.ca, err = os.ReadFile(c.CAFile); err != nil {
			return fmt.Errorf("CA certificate file (--ca-file, %s): %w", agentproto.EnvCAFile, err)
		}
	}
	return nil
}

func (c *common) client() (*client.Client, error) {
	return client.New(client.Config{Endpoint: c.Platform, Token: c.token, RetryMax: c.Retries, CACertificate: c.ca,
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
	r, err := agentproto.ParseRestore(args, stderr)
	if err != nil {
		return err
	}
	c := common{Common: r.Common}
	if err := c.complete(getenv); err != nil {
		return err
	}
	digest, target := r.Version, r.Target
	targetURL, err := withPassword(target, c.password)
	if err != nil {
		return err
	}
	// A first line at once: watchers see the agent is up before any work.
	o.line(Line{Type: agentproto.TypeStart, Component: c.Component})
	clock := newStepClock("manifest")
	defer func() {
		if err != nil {
			// The error line run writes next is the last; this one keeps
			// the timings of a failed restore for the log tail.
			o.line(Line{Type: agentproto.TypeSteps, Component: c.Component, Steps: clock.done()})
		}
	}()
	cl, err := c.client()
	if err != nil {
		return err
	}
	m, dg, err := cl.GetManifest(ctx, c.project, c.name, digest)
	if err != nil {
		return unchangedError{fmt.Errorf("manifest of %s@%s: %w", c.State, digest, err)}
	}
	clock.enter("plan")
	plan, err := restore.Plan(ctx, m, dg, restore.Targets{c.Component: {URL: targetURL, Options: c.Options}},
		cl.Chunks(c.project, c.name), restore.PlanOptions{SkipUnmapped: true, Force: r.Force})
	if err != nil {
		return unchangedError{err}
	}
	if len(plan.Components) != 1 {
		return fmt.Errorf("version %s has no component %q", dg, c.Component)
	}
	if r.PlanOnly {
		o.line(Line{Type: agentproto.TypeResult, Component: c.Component, Plan: &plan.Components[0].ComponentPlan, Steps: clock.done()})
		return nil
	}
	clock.enter("start")
	res, err := restore.Apply(ctx, plan, restore.ApplyOptions{Concurrency: 1, Interval: c.Interval, ReadConcurrency: r.ReadConcurrency,
		Progress: func(e restore.Event) {
			for _, p := range e.Components {
				if p.Phase != "pending" {
					clock.enter(p.Phase)
				}
			}
			o.line(Line{Type: agentproto.TypeProgress, Component: c.Component, Progress: e.Components})
		}})
	if res != nil && len(res.Components) == 1 {
		r := res.Components[0]
		if err == nil {
			o.line(Line{Type: agentproto.TypeResult, Component: c.Component, Result: &r, Steps: clock.done()})
		}
	}
	return err
}

func captureCmd(ctx context.Context, args []string, getenv func(string) string, o *out, stderr io.Writer) error {
	p, err := agentproto.ParseCapture(args, stderr)
	if err != nil {
		return err
	}
	c := common{Common: p.Common}
	if err := c.complete(getenv); err != nil {
		return err
	}
	source, kind, tag, revision, message := p.Source, string(p.Kind), p.Tag, p.Revision, p.Message
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
	m, _, err := capture.Capture(ctx, []capture.Source{{Name: c.Component, Kind: statepkg.Kind(kind), URL: srcURL, Options: c.Options}},
		cl.Chunks(c.project, c.name), capture.Spec{State: c.State, Revision: revision, Message: message, Concurrency: 1,
			Progress: func(e driver.Event) {
				mu.Lock()
				defer mu.Unlock()
				bytes += e.Bytes
				if time.Since(last) >= c.Interval {
					last = time.Now()
					o.line(Line{Type: agentproto.TypeProgress, Component: c.Component, Progress: []restore.ComponentProgress{{Component: c.Component, Phase: e.Phase, Bytes: bytes}}})
				}
			}})
	if err != nil {
		return err
	}
	if p.NoCommit {
		b, err := json.Marshal(m.Components[0])
		if err != nil {
			return fmt.Errorf("encode component: %w", err)
		}
		digest, compressed := statepkg.EncodeChunk(b)
		if err := cl.Chunks(c.project, c.name).PutForReadBack(ctx, digest, compressed); err != nil {
			return fmt.Errorf("upload the component description: %w", err)
		}
		o.line(Line{Type: agentproto.TypeResult, Component: c.Component, ComponentBlob: digest})
		return nil
	}
	v, err := cl.CommitVersion(ctx, c.project, c.name, tag, m)
	if err != nil {
		return fmt.Errorf("commit version of %s: %w", c.State, err)
	}
	o.line(Line{Type: agentproto.TypeResult, Component: c.Component, Version: &v})
	return nil
}
