package scriptrun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	if err := create(ctx, o.Client, objs); err != nil {
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
			if err := deleteJob(dctx, o.Client, o.Namespace, jobName); err != nil {
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
		if err := deleteJob(dctx, o.Client, o.Namespace, jobName); err != nil {
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

// create makes the ConfigMap and Secret, then the Job, then hands both to
// the Job so they are garbage-collected with it; on failure what was made
// is removed again.
func create(ctx context.Context, cs kubernetes.Interface, objs Objects) error {
	ns := objs.Job.Namespace
	cleanup := context.WithoutCancel(ctx)
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, objs.ConfigMap, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create configmap %s/%s for the script: %w", ns, objs.ConfigMap.Name, err)
	}
	if objs.Secret != nil {
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, objs.Secret, metav1.CreateOptions{}); err != nil {
			_ = cs.CoreV1().ConfigMaps(ns).Delete(cleanup, objs.ConfigMap.Name, metav1.DeleteOptions{})
			return fmt.Errorf("create secret %s/%s for the script: %w", ns, objs.Secret.Name, err)
		}
	}
	removeSide := func() {
		_ = cs.CoreV1().ConfigMaps(ns).Delete(cleanup, objs.ConfigMap.Name, metav1.DeleteOptions{})
		if objs.Secret != nil {
			_ = cs.CoreV1().Secrets(ns).Delete(cleanup, objs.Secret.Name, metav1.DeleteOptions{})
		}
	}
	job, err := cs.BatchV1().Jobs(ns).Create(ctx, objs.Job, metav1.CreateOptions{})
	if err != nil {
		removeSide()
		return fmt.Errorf("create script job %s/%s: %w", ns, objs.Job.Name, err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
		BlockOwnerDeletion: ptr(true), Controller: ptr(true),
	}}}})
	_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx, objs.ConfigMap.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err == nil && objs.Secret != nil {
		_, err = cs.CoreV1().Secrets(ns).Patch(ctx, objs.Secret.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		_ = deleteJob(cleanup, cs, ns, job.Name)
		removeSide()
		return fmt.Errorf("hand the script's configmap/secret to job %s: %w", job.Name, err)
	}
	return nil
}

func deleteJob(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	err := cs.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete job %s: %w", name, err)
	}
	return nil
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

// Waiting reasons that will not resolve by themselves.
var fatalWaiting = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerError": true, "CreateContainerConfigError": true, "RunContainerError": true,
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
	var configErrSince time.Time
	// A pod the namespace refuses (quota, LimitRange, Pod Security) is
	// never created: the Job's events say why.
	created := time.Now()
	var lastEventCheck time.Time
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
			if full, err := podLog(context.WithoutCancel(ctx), cs, ns, out.pod, Container, 2000); err == nil && len(full) >= len(strings.TrimRight(out.log, "\n")) {
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
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, w.job, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return done(errors.New("the job was deleted"))
			}
			continue // transient; the next tick retries
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelJobName + "=" + w.job})
		if err != nil {
			continue
		}
		var p *corev1.Pod
		for i := range pods.Items {
			if p == nil || pods.Items[i].CreationTimestamp.After(p.CreationTimestamp.Time) {
				p = &pods.Items[i]
			}
		}
		if p == nil && time.Since(created) > 20*poll && time.Since(lastEventCheck) > 4*poll {
			lastEventCheck = time.Now()
			if reason, permanent := jobs.RefusedPod(ctx, cs, ns, w.job); permanent {
				return done(fmt.Errorf("the namespace refuses its pod: %s", reason))
			}
		}
		var st *corev1.ContainerStatus
		if p != nil {
			out.pod = p.Name
			for i := range p.Status.ContainerStatuses {
				if p.Status.ContainerStatuses[i].Name == Container {
					st = &p.Status.ContainerStatuses[i]
				}
			}
			for _, ist := range p.Status.InitContainerStatuses {
				if t := ist.State.Terminated; t != nil && t.ExitCode != 0 {
					l, _ := podLog(context.WithoutCancel(ctx), cs, ns, p.Name, ist.Name, 50)
					out.initFailed = fmt.Sprintf("init container %s exited %d:\n%s", ist.Name, t.ExitCode, l)
					return done(fmt.Errorf("fetching the data failed (init container %s exited %d)", ist.Name, t.ExitCode))
				}
				if wt := ist.State.Waiting; wt != nil && fatalWaiting[wt.Reason] && !strings.HasPrefix(wt.Reason, "CreateContainerConfig") {
					return done(fmt.Errorf("init container %s: %s: %s", ist.Name, wt.Reason, wt.Message))
				}
			}
		}
		if st != nil {
			if r := st.State.Running; r != nil {
				out.started = r.StartedAt.Time
				w.rec.running(ctx, out.started)
				w.stream(ctx, p.Name)
			}
			if t := st.State.Terminated; t != nil {
				if out.started.IsZero() && !t.StartedAt.IsZero() && t.StartedAt.Unix() > 0 {
					out.started = t.StartedAt.Time
				}
				w.stream(ctx, p.Name)
				code := int(t.ExitCode)
				out.exitCode = &code
				if code == 0 {
					return done(nil)
				}
				if w.o.BackoffLimit == 0 {
					return done(exitError(t))
				}
			}
			if wt := st.State.Waiting; wt != nil && fatalWaiting[wt.Reason] {
				if strings.HasPrefix(wt.Reason, "CreateContainerConfig") {
					// The Secret's owner patch can race the kubelet; a
					// missing credentials Secret stays.
					if configErrSince.IsZero() {
						configErrSince = time.Now()
					}
					if time.Since(configErrSince) < 10*time.Second {
						continue
					}
				}
				return done(fmt.Errorf("container %s: %s: %s", Container, wt.Reason, wt.Message))
			}
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case "Complete", "SuccessCriteriaMet":
				code := 0
				out.exitCode = &code
				return done(nil)
			case "Failed":
				return done(fmt.Errorf("job failed: %s %s", c.Reason, c.Message))
			}
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

// podLog returns the last n lines of a container's log, retrying a little:
// the kubelet's log endpoint fails now and then right after an exit.
func podLog(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, n int) (string, error) {
	tl := int64(n)
	var err error
	for try := 0; try < 6; try++ {
		var b []byte
		b, err = cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &tl}).DoRaw(ctx)
		if err == nil {
			return string(b), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("logs of %s/%s: %w", pod, container, err)
}

// exitError says how the script's container ended; a StartError (e.g. the
// interpreter is not in the image) carries the runtime's message.
func exitError(t *corev1.ContainerStateTerminated) error {
	msg := fmt.Sprintf("exited %d", t.ExitCode)
	if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
		msg += " (" + t.Reason
		if t.Message != "" {
			msg += ": " + strings.TrimSpace(t.Message)
		}
		msg += ")"
	}
	return errors.New(msg)
}
