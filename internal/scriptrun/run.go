package scriptrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// Run runs the script of o in o.Namespace and waits for it. It returns a
// *ValidationError (nothing created) for bad input, a *FailedError when
// the script ran and failed, and other errors for API failures.
func Run(ctx context.Context, o Options) (*Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		return nil, errors.New("scriptrun: no Kubernetes client")
	}
	if o.Namespace == "" {
		return nil, &ValidationError{Script: o.Script, Msg: "no namespace: name the namespace to run in"}
	}
	sc := o.Fetched
	if sc == nil {
		project, name, err := ParseRef(o.Script)
		if err != nil {
			return nil, err
		}
		if o.Platform == nil {
			return nil, errors.New("scriptrun: no platform client to fetch the script from")
		}
		got, err := o.Platform.GetScript(ctx, project, name)
		if err != nil {
			return nil, fmt.Errorf("fetch script %s: %w", o.Script, err)
		}
		sc = &got
	}
	ref := sc.Project + "/" + sc.Name
	vars, err := Resolve(sc, o.Vars)
	if err != nil {
		return nil, err
	}
	if o.Data != nil && (o.Data.AgentImage == "" || o.Data.PlatformURL == "" || o.Data.Token == "") {
		return nil, &ValidationError{Script: ref, Msg: "data to fetch needs the agent image, the platform URL and a job token"}
	}

	if o.Platform == nil {
		for _, v := range vars {
			if v.FromPlatform {
				return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("sensitive variable %s is not set and %v: pass %s", v.Name, errNoPlatformDefault, v.Name)}
			}
		}
	}
	// What the script can see and might print: masked before its log is
	// shown, recorded or returned. Read before anything is created.
	secrets, credErr := credentialValues(ctx, o.Client, o.Namespace, sc.Credentials)
	if o.Data != nil {
		secrets = append(secrets, o.Data.Token)
	}

	var runID string
	var platformDefaults map[string]string
	if o.Platform != nil {
		target := o.Target
		if target == "" {
			target = "namespace/" + o.Namespace
		}
		given := map[string]string{}
		for k, v := range o.Vars {
			given[k] = v
		}
		run, err := o.Platform.CreateRun(ctx, sc.Project, sc.Name, given, target)
		if err != nil {
			return nil, fmt.Errorf("record the run of %s on the platform (nothing was created in the cluster): %w", ref, err)
		}
		runID = run.ID
		platformDefaults = run.SensitiveDefaults
	}
	rec := recorder{o: o, sc: sc, runID: runID, log: log}
	for i, v := range vars {
		if !v.FromPlatform {
			continue
		}
		val, ok := platformDefaults[v.Name]
		if !ok || strings.ContainsRune(val, 0) {
			msg := fmt.Sprintf("the platform did not hand out the default of sensitive variable %s (an older platform, or a default it cannot open): pass %s", v.Name, v.Name)
			rec.finish(ctx, client.RunFailed, nil, time.Time{}, "", msg)
			return nil, &ValidationError{Script: ref, Msg: msg}
		}
		vars[i].Value = val
	}
	secrets = append(secrets, sensitiveValues(vars)...)
	redact := newRedactor(secrets)
	if credErr != nil {
		// Without the credentials' values nothing can be masked: the log
		// is kept in the cluster only.
		log.Warn("script log withheld", "script", ref, "err", credErr)
		redact = withheld(credErr)
	}

	objs := Build(o, sc, vars, runID)
	start := time.Now()
	if _, err := createObjects(ctx, o.Client, objs); err != nil {
		rec.finish(ctx, client.RunFailed, nil, start, "", err.Error())
		return nil, err
	}
	jobName := objs.Job.Name
	log.Info("script job created", "script", ref, "job", jobName, "namespace", o.Namespace, "run", runID)

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The Job's deadline ends the pod; the wait gives it a little more to
	// report why.
	wctx, cancel := context.WithTimeout(ctx, timeout+2*time.Minute)
	defer cancel()
	w := &watcher{o: o, sc: sc, job: jobName, log: log, rec: &rec, buf: &logBuffer{max: 1 << 20}, redact: redact}
	out := w.wait(wctx)
	dur := time.Since(start)

	logText := redact.String(out.log)
	tail := tailBytes(lastLines(logText, logTailLines), maxLogTail)
	if out.err == nil {
		code := 0
		rec.finish(ctx, client.RunSucceeded, &code, out.started, tail, "")
		if !o.KeepJob {
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer dcancel()
			if err := jobs.Delete(dctx, o.Client, o.Namespace, jobName); err != nil {
				log.Warn("could not delete script job", "job", jobName, "err", err)
			}
		}
		return &Result{RunID: runID, Job: jobName, Pod: out.pod, ExitCode: 0, Duration: dur, LogTail: tail}, nil
	}
	if ctx.Err() != nil {
		// Interrupted by the caller: stop the script rather than leave it
		// running unwatched.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		if err := jobs.Delete(dctx, o.Client, o.Namespace, jobName); err != nil {
			log.Warn("could not delete the interrupted script job", "job", jobName, "err", err)
		}
		jobName = ""
	}
	trace := ExtractTrace(sc.Interpreter, logText)
	if out.exitCode == nil && out.initFailed != "" {
		trace = redact.String(out.initFailed)
	}
	code := -1
	if out.exitCode != nil {
		code = *out.exitCode
	}
	rec.finish(ctx, client.RunFailed, out.exitCode, out.started, tail, tailBytes(trace, maxLogTail))
	if jobName != "" && objs.Secret != nil {
		// Reported: the kept Job needs its log, not the sensitive values
		// and data token it ran with.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		if err := o.Client.CoreV1().Secrets(o.Namespace).Delete(dctx, objs.Secret.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			log.Warn("could not delete the failed script job's secret", "job", jobName, "err", err)
		}
	}
	return nil, &FailedError{Script: ref, RunID: runID, Namespace: o.Namespace, Job: jobName, Pod: out.pod,
		ExitCode: code, Reason: out.err.Error(), Trace: trace, LogTail: tail}
}

// recorder reports the run to the platform; failures to record are logged,
// never hide the script's own result.
type recorder struct {
	o       Options
	sc      *client.Script
	runID   string
	log     *slog.Logger
	started bool
}

func (r *recorder) running(ctx context.Context, at time.Time) {
	if r.runID == "" || r.started {
		return
	}
	r.started = true
	at = at.UTC()
	if _, err := r.o.Platform.UpdateRun(ctx, r.sc.Project, r.sc.Name, r.runID, client.RunUpdate{Status: client.RunRunning, StartedAt: &at}); err != nil {
		r.log.Warn("could not record the run as running", "run", r.runID, "err", err)
	}
}

func (r *recorder) finish(ctx context.Context, status string, code *int, started time.Time, tail, trace string) {
	if r.runID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := time.Now().UTC()
	u := client.RunUpdate{Status: status, FinishedAt: &now, ExitCode: code, LogTail: &tail}
	if !started.IsZero() {
		s := started.UTC()
		u.StartedAt = &s
	}
	if trace != "" {
		u.StackTrace = &trace
	}
	if _, err := r.o.Platform.UpdateRun(ctx, r.sc.Project, r.sc.Name, r.runID, u); err != nil {
		r.log.Warn("could not record the run's result", "run", r.runID, "err", err)
	}
}

// createObjects makes the Job with its ConfigMap and (when there is one)
// its Secret, owned by the Job (see jobs.Create).
func createObjects(ctx context.Context, cs kubernetes.Interface, objs Objects) (*batchv1.Job, error) {
	owned := []jobs.Owned{objs.ConfigMap}
	if objs.Secret != nil {
		owned = append(owned, objs.Secret)
	}
	job, err := jobs.Create(ctx, cs, objs.Job, owned...)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	return job, nil
}

// logBuffer keeps the last max bytes written.
type logBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > l.max {
		l.b = append([]byte(nil), l.b[len(l.b)-l.max:]...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// outcome of waiting for the Job.
type outcome struct {
	err        error // nil: succeeded
	pod        string
	exitCode   *int
	started    time.Time
	log        string
	initFailed string // the fetch container's log when it failed
}

type watcher struct {
	o   Options
	sc  *client.Script
	job string
	log *slog.Logger
	rec *recorder
	buf *logBuffer
	// redact masks sensitive values in what is shown live (Follow).
	redact redactor

	streamed  map[string]bool
	streamsWG sync.WaitGroup
	followMu  sync.Mutex
}

func (w *watcher) wait(ctx context.Context) outcome {
	cs, ns := w.o.Client, w.o.Namespace
	poll := w.o.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	w.streamed = map[string]bool{}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var out outcome
	jw := &jobs.Watcher{Client: cs, Namespace: ns, Job: w.job, Container: Container, Poll: poll,
		Retries: w.o.BackoffLimit > 0, Logger: w.log}
	done := func(err error) outcome {
		out.err = err
		// Let the log streams drain (the container has exited), then take
		// the log from the API: the stream may have missed the end.
		ch := make(chan struct{})
		go func() { w.streamsWG.Wait(); close(ch) }()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
		}
		out.log = w.buf.String()
		if out.pod != "" {
			if full, err := jobs.PodLog(context.WithoutCancel(ctx), cs, ns, out.pod, Container, 2000); err == nil && len(full) >= len(strings.TrimRight(out.log, "\n")) {
				out.log = full
			}
		}
		return out
	}
	for {
		select {
		case <-ctx.Done():
			return done(fmt.Errorf("gave up waiting: %w", ctx.Err()))
		case <-tick.C:
		}
		obs := jw.Observe(ctx)
		if obs.Pod != "" {
			out.pod = obs.Pod
		}
		if !obs.StartedAt.IsZero() {
			out.started = obs.StartedAt
		}
		if obs.ExitCode != nil {
			out.exitCode = obs.ExitCode
		}
		switch obs.State {
		case jobs.Running:
			w.rec.running(ctx, out.started)
			w.stream(ctx, obs.Pod)
		case jobs.Succeeded:
			if obs.Pod != "" {
				w.stream(ctx, obs.Pod)
			}
			return done(nil)
		case jobs.Failed:
			if obs.FailedInit != "" {
				l, _ := jobs.PodLog(context.WithoutCancel(ctx), cs, ns, obs.Pod, obs.FailedInit, 50)
				out.initFailed = fmt.Sprintf("%s:\n%s", obs.Reason, l)
				return done(fmt.Errorf("fetching the data failed (%s)", obs.Reason))
			}
			if obs.Exit != "" {
				w.stream(ctx, obs.Pod)
				return done(errors.New(obs.Exit))
			}
			return done(errors.New(obs.Reason))
		case jobs.Waiting:
		}
	}
}

// stream follows the script container's log of pod once, into the buffer
// and Follow.
func (w *watcher) stream(ctx context.Context, pod string) {
	if w.streamed[pod] {
		return
	}
	w.streamed[pod] = true
	w.streamsWG.Add(1)
	go func() {
		defer w.streamsWG.Done()
		rc, err := w.o.Client.CoreV1().Pods(w.o.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: Container, Follow: true}).Stream(ctx)
		if err != nil {
			w.log.Debug("log stream", "pod", pod, "err", err)
			return
		}
		defer rc.Close()
		if w.redact.withheld != "" && w.o.Follow != nil {
			w.followMu.Lock()
			_, _ = io.WriteString(w.o.Follow, w.redact.withheld)
			w.followMu.Unlock()
		}
		r := bufio.NewReader(rc)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				_, _ = w.buf.Write(line)
				if w.o.Follow != nil && w.redact.withheld == "" {
					w.followMu.Lock()
					_, _ = io.WriteString(w.o.Follow, w.redact.String(string(line)))
					w.followMu.Unlock()
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					w.log.Debug("log stream ended", "pod", pod, "err", err)
				}
				return
			}
		}
	}()
}
