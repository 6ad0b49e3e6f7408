package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// This file is the Job runner every Job of the product goes through (the
// agents' here, the scripts' in internal/scriptrun): how a Job and the
// objects it owns are created and removed, which pod states end it, and
// how its logs are read. The callers add only what their container says.

// PodSecurity returns the pod security context of a Job run as the
// workload's user: runAsUser (default 65532, or none when the namespace
// assigns one: any fixed default would be outside its range and the pod
// refused), runAsGroup (default: the uid), fsGroup, non-root, the
// runtime's seccomp profile.
func PodSecurity(runAsUser, runAsGroup, fsGroup *int64, fit PodFit) *corev1.PodSecurityContext {
	var uid, gid *int64
	switch {
	case runAsUser != nil && *runAsUser != 0:
		uid = ptr(*runAsUser)
	case !fit.NamespaceAssignsUID:
		uid = ptr(int64(defaultUID))
	}
	switch {
	case runAsGroup != nil:
		gid = ptr(*runAsGroup)
	case uid != nil:
		gid = ptr(*uid)
	}
	return &corev1.PodSecurityContext{
		RunAsUser: uid, RunAsGroup: gid, FSGroup: fsGroup, RunAsNonRoot: ptr(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// Restricted is the container security context of every Job container:
// what Pod Security's restricted level asks for.
func Restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr(true),
	}
}

// Owned is an object a Job owns (its Secret, its ConfigMap): created
// before it, removed with it.
type Owned interface {
	GetName() string
}

// Create makes the owned objects (Secrets and ConfigMaps), then the Job,
// then hands them to the Job so garbage collection removes them with it.
// If anything fails, what was made is removed again.
func Create(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job, owned ...Owned) (*batchv1.Job, error) {
	ns := job.Namespace
	cleanup := context.WithoutCancel(ctx)
	var made []Owned
	removeOwned := func() {
		for _, o := range made {
			_ = deleteOwned(cleanup, cs, ns, o)
		}
	}
	for _, o := range owned {
		var err error
		switch v := o.(type) {
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(ns).Create(ctx, v, metav1.CreateOptions{})
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, v, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("a Job cannot own a %T", o)
		}
		if err != nil {
			removeOwned()
			return nil, fmt.Errorf("create %s %s/%s for job %s: %w", kindOf(o), ns, o.GetName(), job.Name, err)
		}
		made = append(made, o)
	}
	created, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		removeOwned()
		return nil, fmt.Errorf("create job %s/%s: %w", ns, job.Name, err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID,
		BlockOwnerDeletion: ptr(true), Controller: ptr(true),
	}}}})
	for _, o := range made {
		switch o.(type) {
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(ns).Patch(ctx, o.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx, o.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
		}
		if err != nil {
			_ = Delete(cleanup, cs, ns, created.Name)
			removeOwned()
			return nil, fmt.Errorf("hand %s %s to job %s: %w", kindOf(o), o.GetName(), created.Name, err)
		}
	}
	return created, nil
}

func kindOf(o Owned) string {
	if _, ok := o.(*corev1.ConfigMap); ok {
		return "configmap"
	}
	return "secret"
}

func deleteOwned(ctx context.Context, cs kubernetes.Interface, ns string, o Owned) error {
	if _, ok := o.(*corev1.ConfigMap); ok {
		return cs.CoreV1().ConfigMaps(ns).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
	}
	return cs.CoreV1().Secrets(ns).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
}

// State is where a watched Job stands.
type State int

// The states of a watched Job.
const (
	Waiting State = iota
	Running
	Succeeded
	Failed
)

// Observation is one look at a Job and its newest pod.
type Observation struct {
	State State
	// Pod is the newest pod of the Job ("" before there is one).
	Pod string
	// Reason says why the Job failed (State Failed).
	Reason string
	// FailedInit names the init container whose failure ended the Job.
	FailedInit string
	// ExitCode of the main container, once it ended, and Exit how it
	// ended (ExitReason).
	ExitCode *int
	Exit     string
	// StartedAt: when the main container started.
	StartedAt time.Time
	// Newest is the pod itself (nil before there is one).
	Newest *corev1.Pod
}

// Watcher looks at one Job's pods: the one place that knows which pod
// states end a Job (a failed pod, an init container that failed, a
// waiting state that will not resolve by itself such as ImagePullBackOff
// or CreateContainerConfigError, a pod the namespace refuses, a pod
// that vanished).
type Watcher struct {
	Client         kubernetes.Interface
	Namespace, Job string
	// Container is the main container: its exit ends the Job.
	Container string
	// Poll is how often Observe is called (the grace periods count in
	// polls); default 500ms.
	Poll time.Duration
	// Retries: the Job reruns a failed pod (backoffLimit > 0), so only
	// its Failed condition ends it.
	Retries bool
	Logger  *slog.Logger

	created        time.Time
	seenPod        string
	configErrSince time.Time
	lastEventCheck time.Time
	lastRefusal    string
}

// Waiting reasons that will not resolve by themselves.
var fatalWaiting = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerError": true, "CreateContainerConfigError": true, "RunContainerError": true,
}

// Observe looks at the Job once. API errors are taken as transient (the
// next look retries), except a Job that is gone.
func (w *Watcher) Observe(ctx context.Context) Observation {
	if w.created.IsZero() {
		w.created = time.Now()
	}
	poll := w.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	cs, ns := w.Client, w.Namespace
	failed := func(pod, reason string) Observation {
		return Observation{State: Failed, Pod: pod, Reason: reason}
	}
	j, err := cs.BatchV1().Jobs(ns).Get(ctx, w.Job, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return failed(w.seenPod, "the job was deleted")
		}
		return Observation{Pod: w.seenPod}
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelJobName + "=" + w.Job})
	if err != nil {
		return Observation{Pod: w.seenPod}
	}
	var p *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodSucceeded {
			// The pod's success is enough: the Job controller marks the
			// Job complete a moment later (seconds on a busy control plane).
			return Observation{State: Succeeded, Pod: pods.Items[i].Name, ExitCode: ptr(0), Newest: &pods.Items[i]}
		}
		if p == nil || pods.Items[i].CreationTimestamp.After(p.CreationTimestamp.Time) {
			p = &pods.Items[i]
		}
	}
	if p != nil {
		w.seenPod = p.Name
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return Observation{State: Succeeded, Pod: w.seenPod, ExitCode: ptr(0), Newest: p}
		case batchv1.JobFailed:
			return failed(w.seenPod, fmt.Sprintf("job failed: %s %s", c.Reason, c.Message))
		}
	}
	if p == nil {
		if w.seenPod != "" && !w.Retries {
			return failed(w.seenPod, "the pod disappeared (deleted or evicted)")
		}
		if time.Since(w.created) > 20*poll && time.Since(w.lastEventCheck) > 4*poll {
			w.lastEventCheck = time.Now()
			if reason, permanent := RefusedPod(ctx, cs, ns, w.Job); reason != "" {
				if permanent {
					return failed("", "the namespace refuses its pod: "+reason)
				}
				if reason != w.lastRefusal && w.Logger != nil {
					w.lastRefusal = reason
					w.Logger.Warn("the pod waits for the namespace's quota", "job", w.Job, "reason", reason)
				}
			}
		}
		return Observation{}
	}
	obs := Observation{Pod: p.Name, Newest: p}
	if p.DeletionTimestamp != nil && !w.Retries {
		return failed(p.Name, "the pod is being deleted")
	}
	if p.Status.Phase == corev1.PodFailed && !w.Retries {
		obs.State, obs.Reason = Failed, "pod failed: "+podReason(p)
	}
	for _, st := range p.Status.InitContainerStatuses {
		if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
			obs.State, obs.FailedInit = Failed, st.Name
			obs.Reason = fmt.Sprintf("init container %s %s", st.Name, ExitReason(t))
			return obs
		}
	}
	for _, st := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if wt := st.State.Waiting; wt != nil && fatalWaiting[wt.Reason] {
			// Config errors can be transient right after creation (the
			// Secret's owner patch races the kubelet): a short grace.
			if strings.HasPrefix(wt.Reason, "CreateContainerConfig") {
				if w.configErrSince.IsZero() {
					w.configErrSince = time.Now()
				}
				if time.Since(w.configErrSince) < 10*time.Second {
					continue
				}
			}
			obs.State, obs.Reason = Failed, fmt.Sprintf("container %s: %s: %s", st.Name, wt.Reason, wt.Message)
			return obs
		}
		if st.Name != w.Container {
			continue
		}
		if r := st.State.Running; r != nil {
			obs.StartedAt = r.StartedAt.Time
			if obs.State == Waiting {
				obs.State = Running
			}
		}
		if t := st.State.Terminated; t != nil {
			if !t.StartedAt.IsZero() && t.StartedAt.Unix() > 0 {
				obs.StartedAt = t.StartedAt.Time
			}
			obs.ExitCode, obs.Exit = ptr(int(t.ExitCode)), ExitReason(t)
			switch {
			case t.ExitCode == 0:
				obs.State = Succeeded
			case !w.Retries:
				obs.State, obs.Reason = Failed, fmt.Sprintf("container %s %s", st.Name, ExitReason(t))
			}
		}
	}
	return obs
}

// ExitReason says how a container ended: "exited N", with the runtime's
// reason and message when they say more (a StartError: the command is not
// in the image; OOMKilled).
func ExitReason(t *corev1.ContainerStateTerminated) string {
	msg := fmt.Sprintf("exited %d", t.ExitCode)
	if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
		msg += " (" + t.Reason
		if t.Message != "" {
			msg += ": " + strings.TrimSpace(t.Message)
		}
		msg += ")"
	}
	return msg
}

// PodLog returns the last n lines of a container's log, retrying a
// little: the kubelet's log endpoint fails now and then right after a
// container exits.
func PodLog(ctx context.Context, cs kubernetes.Interface, ns, pod, container string, n int) (string, error) {
	if pod == "" {
		return "", errors.New("no pod")
	}
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

// Lines splits a log into lines (none for an empty log).
func Lines(log string) []string {
	s := strings.TrimRight(log, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
