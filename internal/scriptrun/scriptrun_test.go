package scriptrun

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

func testScript() *client.Script {
	return &client.Script{Project: "shop", Name: "seed", Interpreter: "bash", Body: "echo \"$GREETING\"\n",
		Variables: []client.Variable{
			{Name: "GREETING", Required: true},
			{Name: "COUNT", Default: "3"},
			{Name: "API_KEY", Sensitive: true},
		},
		Credentials: []client.Credential{{Secret: "api", Keys: []string{"token", "base-url"}}, {Secret: "all"}},
	}
}

func TestResolve_ChecksVariablesBeforeAnythingRuns(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*client.Script)
		vars    map[string]string
		wantErr string
		want    []string // NAME=VALUE in declared order
	}{
		{name: "defaults fill the rest", vars: map[string]string{"GREETING": "hi"}, want: []string{"GREETING=hi", "COUNT=3"}},
		{name: "required missing", vars: map[string]string{"COUNT": "1"}, wantErr: "required variable(s) GREETING not set"},
		{name: "unknown name", vars: map[string]string{"GREETING": "x", "NOPE": "1"}, wantErr: "unknown variable(s) NOPE"},
		{name: "unknown interpreter", mutate: func(s *client.Script) { s.Interpreter = "ruby" }, vars: map[string]string{"GREETING": "x"},
			wantErr: `interpreter "ruby" is not supported`},
		{name: "NUL byte", vars: map[string]string{"GREETING": "a\x00b"}, wantErr: "NUL"},
		{name: "empty value is a value", vars: map[string]string{"GREETING": ""}, want: []string{"GREETING=", "COUNT=3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := testScript()
			if tt.mutate != nil {
				tt.mutate(sc)
			}
			got, err := Resolve(sc, tt.vars)
			if tt.wantErr != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a ValidationError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, v := range got {
				names = append(names, v.Name+"="+v.Value)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", names, tt.want)
			}
		})
	}
}

func TestBuild_ValuesOnlyInTheEnvironmentSensitiveOnesInTheSecret(t *testing.T) {
	sc := testScript()
	evil := "\"; rm -rf / #\n$(id) `id`"
	vars, err := Resolve(sc, map[string]string{"GREETING": evil, "API_KEY": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	objs := Build(Options{Namespace: "ns"}, sc, vars, "run1")
	for k, v := range objs.ConfigMap.Data {
		if strings.Contains(v, "rm -rf") || strings.Contains(v, "s3cret") {
			t.Errorf("configmap key %s holds a variable value", k)
		}
	}
	c := objs.Job.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "bash /unikube/script/run.bash /unikube/script/seed.bash" || len(c.Args) != 0 {
		t.Errorf("command %q args %q", c.Command, c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, n := range []string{"GREETING", "UNIKUBE_VAR_GREETING"} {
		if env[n].Value != evil {
			t.Errorf("%s = %q, want the literal value", n, env[n].Value)
		}
	}
	for _, n := range []string{"API_KEY", "UNIKUBE_VAR_API_KEY"} {
		e := env[n]
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != objs.Job.Name {
			t.Errorf("%s: want a reference to the job's secret, got %+v", n, e)
		}
	}
	if objs.Secret == nil || string(objs.Secret.Data["var.API_KEY"]) != "s3cret" {
		t.Fatalf("secret %+v", objs.Secret)
	}
	if e := env["BASE_URL"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "api" || e.ValueFrom.SecretKeyRef.Key != "base-url" {
		t.Errorf("credential key base-url: %+v", e)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "all" {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	ps := objs.Job.Spec.Template.Spec
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || *c.SecurityContext.AllowPrivilegeEscalation ||
		ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("pod is not restricted: %+v %+v", ps.SecurityContext, c.SecurityContext)
	}
	if objs.Job.Labels[LabelManagedBy] != ManagedBy || *objs.Job.Spec.BackoffLimit != 0 ||
		*objs.Job.Spec.ActiveDeadlineSeconds != int64(DefaultTimeout.Seconds()) || objs.Job.Spec.TTLSecondsAfterFinished == nil {
		t.Errorf("job spec %+v labels %v", objs.Job.Spec, objs.Job.Labels)
	}
}

func TestBuild_ReservedNamesOnlyGetThePrefixedVariable(t *testing.T) {
	sc := &client.Script{Project: "p", Name: "s", Interpreter: "sh", Body: "env", Variables: []client.Variable{{Name: "PATH"}}}
	vars, err := Resolve(sc, map[string]string{"PATH": "/evil"})
	if err != nil {
		t.Fatal(err)
	}
	objs := Build(Options{Namespace: "ns"}, sc, vars, "")
	for _, e := range objs.Job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "PATH" {
			t.Errorf("PATH was replaced by a variable")
		}
	}
	if objs.Secret != nil {
		t.Errorf("a secret without sensitive values: %+v", objs.Secret)
	}
}

func TestExtractTrace(t *testing.T) {
	py := `starting
Traceback (most recent call last):
  File "/unikube/script/s.py", line 3, in <module>
    int("x")
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/unikube/script/s.py", line 5, in <module>
    raise RuntimeError("seed failed")
RuntimeError: seed failed
`
	got := ExtractTrace("python", py)
	if !strings.HasPrefix(got, "Traceback (most recent call last):\n  File \"/unikube/script/s.py\", line 3") || !strings.HasSuffix(got, "RuntimeError: seed failed\n") {
		t.Errorf("python trace:\n%s", got)
	}
	bash := "one\ntwo\nls: cannot access '/x'\nunikube-script: error: s.bash line 2: command ls /x exited 2\nunikube-script:   in g, called at s.bash line 5\n"
	got = ExtractTrace("bash", bash)
	if !strings.Contains(got, "line 2: command ls /x exited 2") || !strings.Contains(got, "in g, called at s.bash line 5") || !strings.HasPrefix(got, "one\n") {
		t.Errorf("bash trace:\n%s", got)
	}
	var long []string
	for i := range 30 {
		long = append(long, "line"+string(rune('a'+i%26)))
	}
	got = ExtractTrace("sh", strings.Join(long, "\n"))
	if n := strings.Count(got, "\n"); n != 20 {
		t.Errorf("sh trace has %d lines, want the last 20", n)
	}
	if ExtractTrace("sh", "") != "" {
		t.Errorf("empty log gives a trace")
	}
}

// TestBuild_ScriptPodFitsTheNamespaceAndTheWorkload: every script pod
// (the script and the data fetcher) has cpu/memory requests and limits (a
// quota demanding them admits it), the caller's own where given; a script
// serving a workload takes its pull secrets, nodes, tolerations and
// priority; a namespace assigning uids gets no fixed uid.
func TestBuild_ScriptPodFitsTheNamespaceAndTheWorkload(t *testing.T) {
	sc := testScript()
	vars, err := Resolve(sc, map[string]string{"GREETING": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	data := &Data{AgentImage: "agent", PlatformURL: "http://p", Token: "t", State: "a/b", Digest: "sha256:x", Component: "c"}
	spec := Build(Options{Namespace: "ns", Data: data}, sc, vars, "").Job.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no defaults: %+v", c.Name, c.Resources)
		}
	}
	if spec.ImagePullSecrets != nil || spec.NodeSelector != nil || spec.PriorityClassName != "" {
		t.Errorf("a script serving no workload is placed: %+v", spec)
	}
	if u := spec.SecurityContext.RunAsUser; u == nil || *u != defaultUID {
		t.Errorf("uid %v, want the default", u)
	}

	own, err := jobs.ParseResources("cpu=250m,limits.memory=2Gi")
	if err != nil {
		t.Fatal(err)
	}
	fit := jobs.FitFrom(corev1.PodSpec{
		ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "regcred"}},
		NodeSelector:      map[string]string{"pool": "data"},
		Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
		Affinity:          &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}},
		PriorityClassName: "data-critical",
	})
	fit.NamespaceAssignsUID = true
	spec = Build(Options{Namespace: "ns", Fit: fit, Resources: own}, sc, vars, "").Job.Spec.Template.Spec
	if len(spec.ImagePullSecrets) != 1 || spec.NodeSelector["pool"] != "data" || len(spec.Tolerations) != 1 ||
		spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.PriorityClassName != "data-critical" {
		t.Errorf("pod spec %+v, want the workload's placement", spec)
	}
	r := spec.Containers[0].Resources
	if r.Requests.Cpu().String() != "250m" || r.Limits.Memory().String() != "2Gi" || r.Requests.Memory().IsZero() {
		t.Errorf("resources %+v, want the caller's with defaults for the rest", r)
	}
	if spec.SecurityContext.RunAsUser != nil || spec.SecurityContext.RunAsGroup != nil {
		t.Errorf("uid %v gid %v where the namespace assigns one", spec.SecurityContext.RunAsUser, spec.SecurityContext.RunAsGroup)
	}
}

// TestBuild_ScriptWithoutImageRunsThePublicImageOfItsInterpreter: the
// defaults are real, pinned images from Docker Hub, one per interpreter;
// a script's own image always wins.
func TestBuild_ScriptWithoutImageRunsThePublicImageOfItsInterpreter(t *testing.T) {
	tests := []struct{ interpreter, image, want string }{
		{"sh", "", "docker.io/library/busybox:1.37"},
		{"bash", "", "docker.io/library/bash:5.2"},
		{"python", "", "docker.io/library/python:3.13-alpine"},
		{"python", "registry.example/tools/python:3.12", "registry.example/tools/python:3.12"},
	}
	for _, tc := range tests {
		sc := &client.Script{Project: "p", Name: "s", Interpreter: tc.interpreter, Image: tc.image, Body: "true"}
		objs := Build(Options{Namespace: "ns"}, sc, nil, "")
		if got := objs.Job.Spec.Template.Spec.Containers[0].Image; got != tc.want {
			t.Errorf("%s script with image %q runs %q, want %q", tc.interpreter, tc.image, got, tc.want)
		}
	}
}
