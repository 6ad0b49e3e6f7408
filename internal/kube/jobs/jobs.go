// Package jobs builds and runs the Jobs that run unikube-agent next to the
// data: for a database, the database's own image with the agent copied in
// by an init container (so pg_restore/mysql match the server); for a
// volume, the agent image with the PVC mounted. Run watches the pod and
// fails fast (not at a timeout) on a failed pod or an image that cannot be
// pulled, with the pod's log tail in the error.
package jobs

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	// No uid when the namespace assigns one: any fixed default would be
	// outside its range and the pod rejected.
	var uid, gid *int64
	switch {
	case s.RunAsUser != nil && *s.RunAsUser != 0:
		uid = ptr(*s.RunAsUser)
	case !s.Fit.NamespaceAssignsUID:
		uid = ptr(int64(defaultUID))
	}
	switch {
	case s.RunAsGroup != nil:
		gid = ptr(*s.RunAsGroup)
	case uid != nil:
		gid = ptr(*uid)
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
	restricted := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr(true),
	}
	mounts := []corev1.VolumeMount{{Name: "agent-bin", MountPath: agentBinDir}, {Name: "tmp", MountPath: tmpDir}}
	volumes := []corev1.Volume{
		{Name: "agent-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if s.PVC != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: DataMountPath})
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
					SecurityContext: &corev1.PodSecurityContext{
						RunAsUser: uid, RunAsGroup: gid, FSGroup: s.FSGroup, RunAsNonRoot: ptr(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					InitContainers: inits,
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

// AgentLine is one JSON line the agent writes (see cmd/unikube-agent).
type AgentLine struct {
	Type      string          `json:"type"`
	Component string          `json:"component,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Plan      json.RawMessage `json:"plan,omitempty"`
	// ComponentBlob: see cmd/unikube-agent capture --no-commit.
	ComponentBlob string `json:"componentBlob,omitempty"`
	// Progress of a "progress" line: []restore.ComponentProgress.
	Progress json.RawMessage `json:"progress,omitempty"`
	Version  json.RawMessage `json:"version,omitempty"`
	// Steps: where the agent's time went ([{name, seconds}], see
	// cmd/unikube-agent).
	Steps json.RawMessage `json:"steps,omitempty"`
	Error string          `json:"error,omitempty"`
	// Unchanged: the agent failed before it changed its target.
	Unchanged bool `json:"unchanged,omitempty"`
	// Agent: the agent's version, on its first ("hello") line.
	Agent *buildinfo.Info `json:"agent,omitempty"`
}

// Unchanged says whether the agent's last error line says it failed
// before changing its target (its plan failed).
func (e *PodError) Unchanged() bool {
	for i := len(e.LogTail) - 1; i >= 0; i-- {
		var l AgentLine
		if json.Unmarshal([]byte(e.LogTail[i]), &l) == nil && l.Type == "error" {
			return l.Unchanged
		}
	}
	return false
}

// Result is a finished agent Job.
type Result struct {
	Job      string
	Pod      string
	Duration time.Duration
	// Last is the agent's final JSON line (its result).
	Last AgentLine
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
		var l AgentLine
		if json.Unmarshal([]byte(tail[i]), &l) == nil && l.Type == "error" {
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
	OnLine func(AgentLine)

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
	created, err := create(ctx, cs, job, secret)
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

// create makes the Secret, then the Job, then hands the Secret to the Job
// so garbage collection removes it with the Job. If anything fails, what
// was made is removed again.
func create(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job, secret *corev1.Secret) (*batchv1.Job, error) {
	if _, err := cs.CoreV1().Secrets(secret.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create secret %s/%s for the agent job: %w", secret.Namespace, secret.Name, err)
	}
	created, err := cs.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		_ = cs.CoreV1().Secrets(secret.Namespace).Delete(context.WithoutCancel(ctx), secret.Name, metav1.DeleteOptions{})
		return nil, fmt.Errorf("create agent job %s/%s: %w", job.Namespace, job.Name, err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID,
		BlockOwnerDeletion: ptr(true), Controller: ptr(true),
	}}}})
	if _, err := cs.CoreV1().Secrets(secret.Namespace).Patch(ctx, secret.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		_ = Delete(context.WithoutCancel(ctx), cs, created.Namespace, created.Name)
		_ = cs.CoreV1().Secrets(secret.Namespace).Delete(context.WithoutCancel(ctx), secret.Name, metav1.DeleteOptions{})
		return nil, fmt.Errorf("hand secret %s to job %s: %w", secret.Name, created.Name, err)
	}
	return created, nil
}

// Waiting reasons that will not resolve by themselves.
var fatalWaiting = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerError": true, "CreateContainerConfigError": true, "RunContainerError": true,
}

// wait polls the Job's pod until it succeeds or fails.
func wait(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job, o RunOptions, log *slog.Logger) (Result, error) {
	ns, name := job.Namespace, job.Name
	var res Result
	var tail []string
	var seenPod string
	var lastTailFetch time.Time
	var seenLines int
	// Config errors can be transient right after creation (the Secret's
	// owner patch races the kubelet); give them a short grace.
	var configErrSince time.Time
	// A pod the namespace refuses (quota, LimitRange, Pod Security) is
	// never created: the Job's events say why.
	var lastEventCheck time.Time
	var lastRefusal string
	created, started := time.Now(), false
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	// Once the pod runs, its log is followed: progress lines arrive as
	// the agent writes them, and its result line ends the wait at once
	// (the pod's status says Succeeded seconds later on a busy node).
	// Polling below stays the authority on failures.
	var followed <-chan AgentLine
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
			if l.Type == "hello" && l.Agent != nil {
				res.AgentVersion = l.Agent.Version
				if o.clientVersion != "" && !buildinfo.Match(o.clientVersion, l.Agent.Version) {
					// The agent refuses too (it knows the client's version);
					// Run turns this into a *VersionMismatchError.
					return fail(seenPod, "the agent is of another version")
				}
				continue
			}
			if l.Type == "result" {
				// The agent writes its result line last, only on success.
				res.Pod, res.Last = seenPod, l
				log.Info("agent job complete", "job", name, "after", time.Since(created).Round(time.Millisecond), "steps", string(l.Steps))
				return res, nil
			}
			if o.OnLine != nil && l.Type == "progress" {
				o.OnLine(l)
			}
			continue
		case <-tick.C:
		}
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fail(seenPod, "the job was deleted")
			}
			continue // transient API error; the next tick retries
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelJobName + "=" + name})
		if err != nil {
			continue
		}
		// The pod's success is enough: the Job controller marks the Job
		// complete a moment later (seconds on a busy control plane).
		succeeded := ""
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded {
				succeeded = p.Name
			}
		}
		conds := j.Status.Conditions
		if succeeded != "" {
			conds = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		}
		for _, c := range conds {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				pod := seenPod
				if succeeded != "" {
					pod = succeeded
				} else if len(pods.Items) > 0 {
					pod = pods.Items[0].Name
				}
				// The kubelet's log endpoint fails now and then right after a
				// container exits; retry before giving up.
				lines, err := logTail(ctx, cs, ns, pod, o.LogTail)
				for try := 0; err != nil && try < 10 && ctx.Err() == nil; try++ {
					time.Sleep(500 * time.Millisecond)
					lines, err = logTail(ctx, cs, ns, pod, o.LogTail)
				}
				if err != nil {
					return res, fmt.Errorf("agent job %s succeeded but its log could not be read: %w", name, err)
				}
				res.Pod = pod
				for i := len(lines) - 1; i >= 0; i-- {
					var l AgentLine
					if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Type == "result" {
						res.Last = l
						log.Info("agent job complete", "job", name, "after", time.Since(created).Round(time.Millisecond), "steps", string(l.Steps))
						return res, nil
					}
				}
				return fail(pod, "the agent exited 0 without a result line")
			case batchv1.JobFailed:
				return fail(seenPod, fmt.Sprintf("job failed: %s %s", c.Reason, c.Message))
			}
		}
		if seenPod != "" && len(pods.Items) == 0 {
			return fail(seenPod, "the agent pod disappeared (deleted or evicted)")
		}
		if seenPod == "" && len(pods.Items) == 0 && time.Since(created) > 20*o.Poll && time.Since(lastEventCheck) > 4*o.Poll {
			lastEventCheck = time.Now()
			if reason, permanent := RefusedPod(ctx, cs, ns, name); reason != "" {
				if permanent {
					return fail("", "the namespace refuses its pod: "+reason)
				}
				if reason != lastRefusal {
					lastRefusal = reason
					log.Warn("the agent pod waits for the namespace's quota", "job", name, "reason", reason)
				}
			}
		}
		for _, p := range pods.Items {
			seenPod = p.Name
			if p.DeletionTimestamp != nil {
				return fail(p.Name, "the agent pod is being deleted")
			}
			if p.Status.Phase == corev1.PodFailed {
				return fail(p.Name, "pod failed: "+podReason(&p))
			}
			for _, st := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				if w := st.State.Waiting; w != nil && fatalWaiting[w.Reason] {
					if strings.HasPrefix(w.Reason, "CreateContainerConfig") {
						if configErrSince.IsZero() {
							configErrSince = time.Now()
						}
						if time.Since(configErrSince) < 10*time.Second {
							continue
						}
					}
					return fail(p.Name, fmt.Sprintf("container %s: %s: %s", st.Name, w.Reason, w.Message))
				}
				if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
					return fail(p.Name, fmt.Sprintf("container %s exited %d (%s)", st.Name, t.ExitCode, t.Reason))
				}
			}
			if p.Status.Phase == corev1.PodRunning && !started {
				// Scheduling, the init container copying the agent in and
				// the container start: the fixed cost of a Job.
				started = true
				log.Info("agent pod running", append([]any{"job", name, "pod", p.Name, "after", time.Since(created).Round(time.Millisecond)}, podTimeline(&p)...)...)
				followed = follow(followCtx, cs, ns, p.Name)
			}
			if p.Status.Phase == corev1.PodRunning && time.Since(lastTailFetch) > 2*time.Second {
				// Keep a recent tail: a killed pod's log may be gone later.
				lastTailFetch = time.Now()
				if t, err := logTail(ctx, cs, ns, p.Name, o.LogTail); err == nil && len(t) > 0 {
					tail = t
					if o.OnLine != nil && followed == nil && len(t) != seenLines {
						seenLines = len(t)
						var l AgentLine
						if json.Unmarshal([]byte(t[len(t)-1]), &l) == nil {
							o.OnLine(l)
						}
					}
				}
			}
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

// follow streams the agent container's log and sends its JSON lines until
// the log ends or ctx is done; the channel is closed then.
func follow(ctx context.Context, cs kubernetes.Interface, ns, pod string) <-chan AgentLine {
	ch := make(chan AgentLine, 16)
	go func() {
		defer close(ch)
		r, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: AgentContainer, Follow: true}).Stream(ctx)
		if err != nil {
			return
		}
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l AgentLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
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
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
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
