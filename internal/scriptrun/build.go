package scriptrun

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// Objects are what one run creates: the Job owns the other two.
type Objects struct {
	Job       *batchv1.Job
	ConfigMap *corev1.ConfigMap
	// Secret holds sensitive variable values and the data token; nil when
	// there are none.
	Secret *corev1.Secret
}

const (
	bodyKey    = "script"
	wrapperKey = "run.bash"
	tokenKey   = "unikube-token"
)

// scriptFile is the body's file name: its extension helps tracebacks and
// error lines say what they are.
func scriptFile(sc *client.Script) string {
	switch sc.Interpreter {
	case InterpreterPython:
		return sc.Name + ".py"
	case InterpreterBash:
		return sc.Name + ".bash"
	}
	return sc.Name + ".sh"
}

// command runs the body with its interpreter; never through a shell
// string with values in it.
func command(sc *client.Script) []string {
	body := ScriptDir + "/" + scriptFile(sc)
	switch sc.Interpreter {
	case InterpreterPython:
		return []string{"python3", "-u", body}
	case InterpreterBash:
		return []string{"bash", ScriptDir + "/" + wrapperKey, body}
	}
	return []string{"sh", "-e", body}
}

func randSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncName(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, "-.")
}

// Build returns the objects of one run of sc with the resolved variables
// (owner references are set after the Job exists).
func Build(o Options, sc *client.Script, vars []variable, runID string) Objects {
	name := truncName("script-"+sc.Name, 50) + "-" + randSuffix()
	labels := map[string]string{LabelManagedBy: ManagedBy, LabelScript: sc.Name, LabelProject: sc.Project}
	if runID != "" {
		labels[LabelRun] = truncName(strings.ToLower(runID), 63)
	}
	for k, v := range o.Labels {
		labels[k] = v
	}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: labels}
	}
	file := scriptFile(sc)
	cm := &corev1.ConfigMap{ObjectMeta: meta(), Data: map[string]string{file: sc.Body}}
	items := []corev1.KeyToPath{{Key: file, Path: file, Mode: ptr(int32(0o444))}}
	if sc.Interpreter == InterpreterBash {
		cm.Data[wrapperKey] = bashWrapper
		items = append(items, corev1.KeyToPath{Key: wrapperKey, Path: wrapperKey, Mode: ptr(int32(0o444))})
	}
	secret := &corev1.Secret{ObjectMeta: meta(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}}
	secretRef := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}
	}

	env := []corev1.EnvVar{
		{Name: "HOME", Value: TmpDir},
		{Name: "TMPDIR", Value: TmpDir},
		{Name: "PYTHONDONTWRITEBYTECODE", Value: "1"},
		{Name: "PYTHONUNBUFFERED", Value: "1"},
		{Name: "UNIKUBE_SCRIPT", Value: sc.Project + "/" + sc.Name},
		{Name: "UNIKUBE_NAMESPACE", Value: o.Namespace},
	}
	if runID != "" {
		env = append(env, corev1.EnvVar{Name: "UNIKUBE_RUN", Value: runID})
	}
	var envFrom []corev1.EnvFromSource
	mounts := []corev1.VolumeMount{
		{Name: "script", MountPath: ScriptDir, ReadOnly: true},
		{Name: "tmp", MountPath: TmpDir},
	}
	volumes := []corev1.Volume{
		{Name: "script", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items, DefaultMode: ptr(int32(0o444))}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}

	// Credentials first, so a declared variable of the same name wins.
	for i, c := range sc.Credentials {
		vol := "cred-" + strconv.Itoa(i)
		src := &corev1.SecretVolumeSource{SecretName: c.Secret, DefaultMode: ptr(int32(0o444))}
		if len(c.Keys) == 0 {
			envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: c.Secret}}})
		}
		for _, k := range c.Keys {
			env = append(env, corev1.EnvVar{Name: EnvName(k), ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: c.Secret}, Key: k}}})
			src.Items = append(src.Items, corev1.KeyToPath{Key: k, Path: k})
		}
		volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: src}})
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: CredentialsDir + "/" + c.Secret, ReadOnly: true})
	}

	for _, v := range vars {
		names := []string{VarPrefix + v.Name}
		if !reserved[v.Name] && !strings.HasPrefix(v.Name, "UNIKUBE_") {
			names = append(names, v.Name)
		}
		for _, n := range names {
			if v.Sensitive {
				key := "var." + v.Name
				secret.Data[key] = []byte(v.Value)
				env = append(env, corev1.EnvVar{Name: n, ValueFrom: secretRef(key)})
			} else {
				env = append(env, corev1.EnvVar{Name: n, Value: v.Value})
			}
		}
	}
	extra := make([]string, 0, len(o.Env))
	for k := range o.Env {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		env = append(env, corev1.EnvVar{Name: k, Value: o.Env[k]})
	}

	res := jobs.WithDefaults(o.Resources)
	restricted := jobs.Restricted()
	var inits []corev1.Container
	if d := o.Data; d != nil {
		secret.Data[tokenKey] = []byte(d.Token)
		volumes = append(volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: DataDir, ReadOnly: true})
		env = append(env, corev1.EnvVar{Name: "UNIKUBE_DATA", Value: DataDir})
		// Only the fetching agent talks to the platform: it alone gets the CA.
		fetchMounts, fetchVolumes, fetchEnv := jobs.WithCA(d.CAConfigMap,
			[]corev1.VolumeMount{{Name: "data", MountPath: DataDir}, {Name: "tmp", MountPath: TmpDir}}, nil,
			[]corev1.EnvVar{{Name: agentproto.EnvToken, ValueFrom: secretRef(tokenKey)}, {Name: "HOME", Value: TmpDir}, {Name: "TMPDIR", Value: TmpDir},
				{Name: agentproto.EnvClientVersion, Value: d.ClientVersion}})
		volumes = append(volumes, fetchVolumes...)
		inits = append(inits, corev1.Container{
			Name: FetchContainer, Image: d.AgentImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: append([]string{"/unikube-agent"}, agentproto.Fetch{
				Common:  agentproto.Common{Platform: d.PlatformURL, State: d.State, Component: d.Component},
				Version: d.Digest, Dest: DataDir,
			}.Args()...),
			Env:             fetchEnv,
			VolumeMounts:    fetchMounts,
			SecurityContext: restricted, Resources: *res.DeepCopy(),
		})
	}
	if o.TargetPVC != "" {
		volumes = append(volumes, corev1.Volume{Name: "target", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.TargetPVC}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "target", MountPath: TargetDir})
		env = append(env, corev1.EnvVar{Name: "UNIKUBE_TARGET", Value: TargetDir})
	}

	image := sc.Image
	if image == "" {
		image = DefaultImageFor(sc.Interpreter)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ttl := o.TTLAfterFinished
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	job := &batchv1.Job{
		ObjectMeta: meta(),
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(o.BackoffLimit),
			ActiveDeadlineSeconds:   ptr(int64(timeout / time.Second)),
			TTLSecondsAfterFinished: ptr(int32(ttl / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: sc.ServiceAccount,
					// Only a script given a service account talks to the API.
					AutomountServiceAccountToken: ptr(sc.ServiceAccount != ""),
					NodeName:                     o.NodeName,
					SecurityContext:              jobs.PodSecurity(o.RunAsUser, o.RunAsGroup, o.FSGroup, o.Fit),
					InitContainers:               inits,
					Containers: []corev1.Container{{
						Name: Container, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: command(sc), Env: env, EnvFrom: envFrom, VolumeMounts: mounts,
						WorkingDir: TmpDir, SecurityContext: restricted, Resources: res,
					}},
					Volumes: volumes,
				},
			},
		},
	}
	o.Fit.ApplyTo(&job.Spec.Template.Spec)
	out := Objects{Job: job, ConfigMap: cm}
	if len(secret.Data) > 0 {
		out.Secret = secret
	}
	return out
}

func ptr[T any](v T) *T { return &v }
