// Package jobs builds and runs the Jobs that run unikube-agent next to the
// data: for a database, the database's own image with the agent copied in
// by an init container (so pg_restore/mysql match the server); for a
// volume, the agent image with the PVC mounted. Run watches the pod and
// fails fast (not at a timeout) on a failed pod or an image that cannot be
// pulled, with the pod's log tail in the error.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
)

// Labels every object made by the executor carries.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	ManagedBy         = "unikube-state"
	LabelComponent    = "unikube.dev/component"
	LabelJobName      = "batch.kubernetes.io/job-name"
	agentBinDir       = "/unikube/bin"
	tmpDir            = "/unikube/tmp"
	AgentPath         = agentBinDir + "/unikube-agent"
	AgentContainer    = "agent"
	InstallContainer  = "install-agent"
	EnvToken          = "UNIKUBE_TOKEN"
	EnvTargetPassword = "UNIKUBE_TARGET_PASSWORD"
	EnvClientVersion  = "UNIKUBE_CLIENT_VERSION"
	DataMountPath     = "/data"
	// CAKey is the key of the CA bundle in its ConfigMap (as in
	// kube-root-ca.crt); CAFile is where the agent finds it, named by
	// EnvCAFile.
	CAKey             = "ca.crt"
	caDir             = "/unikube/ca"
	CAFile            = caDir + "/" + CAKey
	EnvCAFile         = "UNIKUBE_CA_FILE"
	defaultUID        = 65532
	secretTokenKey    = "token"
	secretPasswordKey = "password"
)

// DefaultTTLAfterFinished is how long a finished Job lingers when its
// runner went away before deleting it.
const DefaultTTLAfterFinished = 10 * time.Minute

// Spec describes one agent Job.
type Spec struct {
	Namespace string
	// Name of the Job (and its Secret); generated from Component when empty.
	Name      string
	Component string
	// Image runs the agent: the database's own image, or AgentImage for a
	// volume (Image empty).
	Image      string
	AgentImage string // e.g. ghcr.io/unikubehq/unikube-agent:v1.2.3
	// ClientVersion, when set, is the caller's version (internal/buildinfo):
	// the agent refuses to work for another version, and Run refuses an
	// agent that reports another version (a *VersionMismatchError).
	ClientVersion string
	// Args follow the agent binary: restore --platform ... (never secrets).
	Args []string
	// Token is the platform job token, put in a Secret owned by the Job.
	Token string
	// Password for the target, put in the same Secret; or PasswordRef to
	// use the workload's own Secret key without reading it.
	Password    string
	PasswordRef *corev1.SecretKeySelector
	// PVC is mounted at /data when set (volume components).
	PVC string
	// ReadOnlyData mounts the PVC read-only: a plan-only agent reads the
	// target and must not be able to change it.
	ReadOnlyData bool
	// NodeName pins the pod (a ReadWriteOnce volume attached there).
	NodeName string
	// RunAsUser/RunAsGroup/FSGroup: the workload's, so restored files get
	// its ownership without a privileged pod (default 65532, or none when
	// Fit.NamespaceAssignsUID: the namespace assigns one).
	RunAsUser, RunAsGroup, FSGroup *int64
	Labels                         map[string]string
	// Deadline bounds the Job (activeDeadlineSeconds); default 1h.
	Deadline        time.Duration
	ImagePullPolicy corev1.PullPolicy // default IfNotPresent
	// CAConfigMap names a ConfigMap in Namespace whose key ca.crt holds
	// the PEM bundle the agent verifies the platform with (a private CA),
	// mounted at CAFile. Empty: the system's roots only.
	CAConfigMap string
	// Fit: pull secrets, node placement and priority of the workload's
	// pod (see PodFit).
	Fit PodFit
	// Resources of the agent's containers; what it leaves out is taken
	// from DefaultResources.
	Resources *corev1.ResourceRequirements

	// TTLAfterFinished (ttlSecondsAfterFinished, default
	// DefaultTTLAfterFinished) removes a finished Job with its pod and
	// Secret even when no runner is left to delete it. Run deletes a
	// succeeded Job at once and lifts the TTL of a failed one, which it
	// keeps for inspection without its Secret.
	TTLAfterFinished time.Duration
}

func randSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Build returns the Job and its Secret (without the owner reference, which
// needs the Job's UID).
func Build(s Spec) (*batchv1.Job, *corev1.Secret) {
	if s.Name == "" {
		s.Name = truncate("unikube-"+s.Component, 56) + "-" + randSuffix()
	}
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelComponent: s.Component}
	for k, v := range s.Labels {
		labels[k] = v
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{secretTokenKey: []byte(s.Token)},
	}
	env := []corev1.EnvVar{
		{Name: "HOME", Value: tmpDir},
		{Name: "TMPDIR", Value: tmpDir},
		{Name: EnvToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: s.Name}, Key: secretTokenKey}}},
	}
	if s.ClientVersion != "" {
		env = append(env, corev1.EnvVar{Name: EnvClientVersion, Value: s.ClientVersion})
	}
	switch {
	case s.PasswordRef != nil:
		env = append(env, corev1.EnvVar{Name: EnvTargetPassword, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: s.PasswordRef}})
	case s.Password != "":
		secret.Data[secretPasswordKey] = []byte(s.Password)
		env = append(env, corev1.EnvVar{Name: EnvTargetPassword, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: s.Name}, Key: secretPasswordKey}}})
	}
	res := resources(s.Resources)
	pull := s.ImagePullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	deadline := s.Deadline
	if deadline <= 0 {
		deadline = time.Hour
	}
	ttl := s.TTLAfterFinished
	if ttl <= 0 {
		ttl = DefaultTTLAfterFinished
	}
	restricted := Restricted()
	mounts := []corev1.VolumeMount{{Name: "agent-bin", MountPath: agentBinDir}, {Name: "tmp", MountPath: tmpDir}}
	volumes := []corev1.Volume{
		{Name: "agent-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if s.PVC != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: DataMountPath, ReadOnly: s.ReadOnlyData})
		volumes = append(volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.PVC}}})
	}
	mounts, volumes, env = WithCA(s.CAConfigMap, mounts, volumes, env)
	image, command := s.Image, []string{AgentPath}
	var inits []corev1.Container
	if image == "" {
		// Volume Jobs run the static agent image itself.
		image, command = s.AgentImage, []string{"/unikube-agent"}
	} else {
		inits = []corev1.Container{{
			Name: InstallContainer, Image: s.AgentImage, ImagePullPolicy: pull,
			Command:         []string{"/unikube-agent", "install", AgentPath},
			VolumeMounts:    []corev1.VolumeMount{{Name: "agent-bin", MountPath: agentBinDir}},
			SecurityContext: restricted, Resources: *res.DeepCopy(),
		}}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			ActiveDeadlineSeconds:   ptr(int64(deadline / time.Second)),
			TTLSecondsAfterFinished: ptr(int32(max(ttl/time.Second, 1))),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr(false),
					NodeName:                     s.NodeName,
					SecurityContext:              PodSecurity(s.RunAsUser, s.RunAsGroup, s.FSGroup, s.Fit),
					InitContainers:               inits,
					Containers: []corev1.Container{{
						Name: AgentContainer, Image: image, ImagePullPolicy: pull,
						Command: command, Args: s.Args, Env: env, VolumeMounts: mounts,
						SecurityContext: restricted, Resources: res,
					}},
					Volumes: volumes,
				},
			},
		},
	}
	s.Fit.ApplyTo(&job.Spec.Template.Spec)
	return job, secret
}

func ptr[T any](v T) *T { return &v }

// WithCA adds the CA bundle of ConfigMap cm (nothing when cm is empty): a
// read-only volume at CAFile and UNIKUBE_CA_FILE naming it. A missing
// ConfigMap keeps the pod from starting, never from verifying.
func WithCA(cm string, mounts []corev1.VolumeMount, volumes []corev1.Volume, env []corev1.EnvVar) ([]corev1.VolumeMount, []corev1.Volume, []corev1.EnvVar) {
	if cm == "" {
		return mounts, volumes, env
	}
	volumes = append(volumes, corev1.Volume{Name: "unikube-ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: []corev1.KeyToPath{{Key: CAKey, Path: CAKey}}, DefaultMode: ptr(int32(0o444))}}})
	mounts = append(mounts, corev1.VolumeMount{Name: "unikube-ca", MountPath: caDir, ReadOnly: true})
	env = append(env, corev1.EnvVar{Name: EnvCAFile, Value: CAFile})
	return mounts, volumes, env
}

func truncate(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-.")
	}
	return s
}

// Unchanged says whether the agent's last error line says it failed
// before changing its target (its plan failed).
func (e *PodError) Unchanged() bool {
	l, ok := agentproto.Last(e.LogTail, agentproto.TypeError)
	return ok && l.Unchanged
}

// Result is a finished agent Job.
type Result struct {
	Job      string
	Pod      string
	Duration time.Duration
	// Last is the agent's final JSON line (its result).
	Last agentproto.Line
	// AgentVersion is the version the agent reported on its first line
	// (when Run saw it).
	AgentVersion string
}

// PodError is a failed agent Job, with the pod's log tail.
type PodError struct {
	Namespace, Job, Pod string
	Reason              string
	LogTail             []string
	// Kept: the failed Job and its pod stay for inspection (their
	// credentials Secret is deleted).
	Kept bool
}

func (e *PodError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "agent job %s", e.Job)
	if e.Pod != "" {
		fmt.Fprintf(&b, " (pod %s)", e.Pod)
	}
	fmt.Fprintf(&b, " failed: %s", e.Reason)
	// The agent's own error, when it wrote one, says most; the tail
	// then leaves out that line, so the cause is said once.
	tail := e.LogTail
	for i := len(tail) - 1; i >= 0; i-- {
		if l, err := agentproto.Parse([]byte(tail[i])); err == nil && l.Type == agentproto.TypeError {
			fmt.Fprintf(&b, ": %s", l.Error)
			tail = append(slices.Clone(tail[:i]), tail[i+1:]...)
			break
		}
	}
	if len(tail) > 0 {
		fmt.Fprintf(&b, "\nlast %d log lines:\n%s", len(tail), strings.Join(tail, "\n"))
	}
	if e.Kept {
		fmt.Fprintf(&b, "\n(the Job and its pod are kept for inspection, without their credentials Secret: kubectl -n %s logs job/%s)", e.Namespace, e.Job)
	}
	return b.String()
}

// RunOptions tune Run.
type RunOptions struct {
	// DeleteOnFailure removes the Job even when it failed (default: kept).
	DeleteOnFailure bool
	// LogTail is how many log lines a failure keeps (default 50).
	LogTail int
	// Poll is how often the pod is checked (default 500ms).
	Poll   time.Duration
	Logger *slog.Logger
	// OnLine receives each new JSON progress line of the agent (optional).
	OnLine func(agentproto.Line)

	clientVersion string // Spec.ClientVersion, for wait
}

// Run creates the Job of s and waits for it: success deletes it (and, by
// owner reference, its Secret and pod); failure keeps it unless told
// otherwise and returns a *PodError.
func Run(ctx context.Context, cs kubernetes.Interface, s Spec, o RunOptions) (Result, error) {
	if o.LogTail <= 0 {
		o.LogTail = 50
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.clientVersion = s.ClientVersion
	job, secret := Build(s)
	start := time.Now()
	created, err := Create(ctx, cs, job, secret)
	if err != nil {
		return Result{}, err
	}
	log.Info("agent job created", "job", created.Name, "component", s.Component)
	res, err := wait(ctx, cs, created, o, log)
	res.Job, res.Duration = created.Name, time.Since(start)
	if s.ClientVersion != "" {
		if verr := checkAgent(ctx, cs, created.Namespace, s, &res, err); verr != nil {
			err = verr
		}
	}
	// A fresh context: clean-up must happen even when ctx was cancelled.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err == nil || o.DeleteOnFailure {
		if derr := Delete(dctx, cs, created.Namespace, created.Name); derr != nil {
			log.Warn("could not delete agent job", "job", created.Name, "err", derr)
		}
		return res, err
	}
	// The failure and its log tail are in hand: keep the Job and pod for
	// inspection, but not the token and password they no longer need.
	if kerr := KeepFailed(dctx, cs, created.Namespace, created.Name); kerr != nil {
		log.Warn("could not strip the failed agent job of its credentials", "job", created.Name, "err", kerr)
	}
	var pe *PodError
	if errors.As(err, &pe) {
		pe.Kept = true
	}
	return res, err
}

// KeepFailed keeps a failed Job and its pod (their logs) for inspection:
// it lifts the Job's ttlSecondsAfterFinished and deletes the Secret holding
// its platform token and target password. Call it once the failure has
// been reported: nothing can rerun the Job after that.
func KeepFailed(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	patch := []byte(`{"spec":{"ttlSecondsAfterFinished":null}}`)
	var errs []error
	if _, err := cs.BatchV1().Jobs(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("keep job %s: %w", name, err))
	}
	if err := cs.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete the credentials secret %s of the failed job: %w", name, err))
	}
	return errors.Join(errs...)
}

// Delete removes a Job with its pods and (owned) Secret.
func Delete(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	err := cs.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete job %s: %w", name, err)
	}
	return nil
}

// wait watches the Job's pod until it succeeds or fails; the agent's
// result line ends it as soon as it is written.
func wait(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job, o RunOptions, log *slog.Logger) (Result, error) {
	ns, name := job.Namespace, job.Name
	w := &Watcher{Client: cs, Namespace: ns, Job: name, Container: AgentContainer, Poll: o.Poll, Logger: log}
	var res Result
	var tail []string
	var seenPod string
	var lastTailFetch time.Time
	var seenLines int
	created, started := time.Now(), false
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	// Once the pod runs, its log is followed: progress lines arrive as
	// the agent writes them, and its result line ends the wait at once
	// (the pod's status says Succeeded seconds later on a busy node).
	// The watcher stays the authority on failures.
	var followed <-chan agentproto.Line
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	fail := func(pod, reason string) (Result, error) {
		if pod != "" {
			if t, err := logTail(context.WithoutCancel(ctx), cs, ns, pod, o.LogTail); err == nil && len(t) > 0 {
				tail = t
			}
		}
		res.Pod = pod
		return res, &PodError{Namespace: ns, Job: name, Pod: pod, Reason: reason, LogTail: tail}
	}
	for {
		select {
		case <-ctx.Done():
			return fail(seenPod, fmt.Sprintf("cancelled: %v", ctx.Err()))
		case l, ok := <-followed:
			if !ok {
				followed = nil // the stream ended; polling carries on
				continue
			}
			switch l.Type {
			case agentproto.TypeHello:
				if l.Agent != nil {
					res.AgentVersion = l.Agent.Version
					if o.clientVersion != "" && !buildinfo.Match(o.clientVersion, l.Agent.Version) {
						// The agent refuses too (it knows the client's version);
						// Run turns this into a *VersionMismatchError.
						return fail(seenPod, "the agent is of another version")
					}
				}
			case agentproto.TypeResult:
				// The agent writes its result line last, only on success.
				res.Pod, res.Last = seenPod, l
				log.Info("agent job complete", "job", name, "after", time.Since(created).Round(time.Millisecond), "steps", l.Steps)
				return res, nil
			case agentproto.TypeProgress:
				if o.OnLine != nil {
					o.OnLine(l)
				}
			}
			continue
		case <-tick.C:
		}
		obs := w.Observe(ctx)
		if obs.Pod != "" {
			seenPod = obs.Pod
		}
		switch obs.State {
		case Failed:
			return fail(obs.Pod, obs.Reason)
		case Succeeded:
			out, err := PodLog(ctx, cs, ns, obs.Pod, AgentContainer, o.LogTail)
			if err != nil {
				return res, fmt.Errorf("agent job %s succeeded but its log could not be read: %w", name, err)
			}
			res.Pod = obs.Pod
			if l, ok := agentproto.Last(Lines(out), agentproto.TypeResult); ok {
				res.Last = l
				log.Info("agent job complete", "job", name, "after", time.Since(created).Round(time.Millisecond), "steps", l.Steps)
				return res, nil
			}
			return fail(obs.Pod, "the agent exited 0 without a result line")
		case Running:
			if !started {
				// Scheduling, the init container copying the agent in and
				// the container start: the fixed cost of a Job.
				started = true
				log.Info("agent pod running", append([]any{"job", name, "pod", obs.Pod, "after", time.Since(created).Round(time.Millisecond)}, podTimeline(obs.Newest)...)...)
				followed = follow(followCtx, cs, ns, obs.Pod, log)
			}
			if time.Since(lastTailFetch) > 2*time.Second {
				// Keep a recent tail: a killed pod's log may be gone later.
				lastTailFetch = time.Now()
				if t, err := logTail(ctx, cs, ns, obs.Pod, o.LogTail); err == nil && len(t) > 0 {
					tail = t
					if o.OnLine != nil && followed == nil && len(t) != seenLines {
						seenLines = len(t)
						if l, err := agentproto.Parse([]byte(t[len(t)-1])); err == nil && l.Type == agentproto.TypeProgress {
							o.OnLine(l)
						}
					}
				}
			}
		case Waiting:
		}
		log.Debug("waiting for agent job", "job", name, "pod", seenPod)
	}
}

// RefusedPod returns why the Job controller could not create the pod of
// job, from its latest FailedCreate event, and whether that lasts: a pod
// over the quota's remaining room waits for other pods to finish, one the
// namespace forbids otherwise (no limits where the quota demands them,
// beyond a LimitRange, against the Pod Security level) never starts. Best
// effort: without the right to list events it returns nothing.
func RefusedPod(ctx context.Context, cs kubernetes.Interface, ns, job string) (string, bool) {
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + job})
	if err != nil {
		return "", false
	}
	var last *corev1.Event
	for i := range evs.Items {
		e := &evs.Items[i]
		if e.Reason == "FailedCreate" && (last == nil || e.LastTimestamp.After(last.LastTimestamp.Time)) {
			last = e
		}
	}
	if last == nil || !strings.Contains(last.Message, "forbidden") {
		return "", false
	}
	return last.Message, !strings.Contains(last.Message, "exceeded quota")
}

// podTimeline says when (seconds after the pod was created, to the API's
// one-second resolution) the pod was scheduled and its init containers
// finished: where a slow start went.
func podTimeline(p *corev1.Pod) []any {
	var out []any
	since := func(t metav1.Time) string { return t.Sub(p.CreationTimestamp.Time).Round(time.Second).String() }
	for _, c := range p.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == corev1.PodScheduled || c.Type == corev1.PodInitialized) {
			out = append(out, string(c.Type), since(c.LastTransitionTime))
		}
	}
	for _, st := range p.Status.InitContainerStatuses {
		if t := st.State.Terminated; t != nil {
			out = append(out, st.Name+" ran", since(t.StartedAt)+"-"+since(t.FinishedAt))
		}
	}
	return out
}

func podReason(p *corev1.Pod) string {
	parts := []string{}
	if p.Status.Reason != "" {
		parts = append(parts, p.Status.Reason)
	}
	if p.Status.Message != "" {
		parts = append(parts, p.Status.Message)
	}
	for _, st := range p.Status.ContainerStatuses {
		if t := st.State.Terminated; t != nil {
			parts = append(parts, fmt.Sprintf("%s exited %d (%s)", st.Name, t.ExitCode, t.Reason))
		}
	}
	if len(parts) == 0 {
		return "unknown reason"
	}
	return strings.Join(parts, "; ")
}

// follow streams the agent container's log and sends its lines until
// the log ends or ctx is done; the channel is closed then. What is not an
// agent line is logged and skipped: the log tail of a failure shows it.
func follow(ctx context.Context, cs kubernetes.Interface, ns, pod string, log *slog.Logger) <-chan agentproto.Line {
	ch := make(chan agentproto.Line, 16)
	go func() {
		defer close(ch)
		r, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: AgentContainer, Follow: true}).Stream(ctx)
		if err != nil {
			return
		}
		defer r.Close()
		lr := agentproto.NewReader(r)
		for {
			l, err := lr.Next()
			var le *agentproto.LineError
			if errors.As(err, &le) {
				log.Debug("agent log", "pod", pod, "err", err)
				continue
			}
			if err != nil {
				return
			}
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// logTail returns the last n lines of the agent container's log.
func logTail(ctx context.Context, cs kubernetes.Interface, ns, pod string, n int) ([]string, error) {
	if pod == "" {
		return nil, errors.New("no pod")
	}
	tl := int64(n)
	b, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: AgentContainer, TailLines: &tl}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", pod, err)
	}
	return Lines(string(b)), nil
}

// logHead returns the first lines of the agent container's log (at most
// 16 KiB of it): where its hello line is, however long the log grew.
func logHead(ctx context.Context, cs kubernetes.Interface, ns, pod string) ([]string, error) {
	if pod == "" {
		return nil, errors.New("no pod")
	}
	limit := int64(16 << 10)
	b, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: AgentContainer, LimitBytes: &limit}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", pod, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
}
