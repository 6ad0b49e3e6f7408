// Package scriptrun runs the platform's cluster scripts (sh, bash, python)
// inside a namespace as Kubernetes Jobs and records each run on the
// platform.
//
// Callers (the Helm plugin's `script run`, the provider's pre_script and
// post_script blocks, the executor's `script` components) do one call:
//
//	res, err := scriptrun.Run(ctx, scriptrun.Options{
//		Client:    clientset,            // kubernetes.Interface
//		Platform:  platformClient,       // *client.Client: fetches the script, records the run
//		Namespace: "shop-dev",
//		Script:    "shop/seed-users",    // project/name
//		Vars:      map[string]string{"COUNT": "10"},
//		Follow:    os.Stderr,            // the pod's log as it runs (optional)
//		Timeout:   10 * time.Minute,     // activeDeadlineSeconds and the wait (default 30m)
//	})
//	var fe *scriptrun.FailedError   // the script ran and failed:
//	if errors.As(err, &fe) { ... fe.Trace, fe.ExitCode, fe.LogTail, fe.RunID ... }
//	var ve *scriptrun.ValidationError // bad input, nothing was created
//
// How a run works: the variables are checked against the script's
// declarations (unknown names, required ones missing, bad interpreter)
// BEFORE anything is created, then a run is recorded on the platform
// (pending), then a ConfigMap with the body, a Secret with the sensitive
// variable values and a Job are created; the ConfigMap and Secret are owned
// by the Job, so they go with it. Variables reach the script only through
// its environment, as UNIKUBE_VAR_<NAME> and as <NAME>; they are never
// spliced into the script's text, so quotes, $(...), backticks or newlines
// in a value are just bytes. The script's credentials (Secrets in the
// namespace) become environment variables (each key, upper-cased with
// non-alphanumerics as _) and files under /unikube/credentials/<secret>/.
// bash runs with `set -Eeuo pipefail` and an ERR trap printing the failing
// line and command; python runs unbuffered. The pod's log is streamed to
// Follow; when the script exits, the run is updated on the platform with
// status, exit code, times, log tail and, on failure, the stack trace (the
// python traceback, or the bash trap's line with the last error lines).
package scriptrun

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// Interpreters a script may use.
const (
	InterpreterSh     = "sh"
	InterpreterBash   = "bash"
	InterpreterPython = "python"
)

// Paths inside the script's pod.
const (
	ScriptDir      = "/unikube/script"
	DataDir        = "/unikube/data"
	TargetDir      = "/unikube/target"
	CredentialsDir = "/unikube/credentials"
	TmpDir         = "/unikube/tmp"
	// VarPrefix is the prefix of the environment variable that carries a
	// variable's value next to its plain name.
	VarPrefix = "UNIKUBE_VAR_"
)

// Labels and defaults.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "unikube-state"
	LabelScript    = "unikube.dev/script"
	LabelProject   = "unikube.dev/script-project"
	LabelRun       = "unikube.dev/script-run"
	LabelJobName   = "batch.kubernetes.io/job-name"
	// Container is the name of the container running the script.
	Container = "script"
	// FetchContainer is the init container that fetches a component's
	// data (Options.Data).
	FetchContainer = "fetch-data"

	// DefaultImage runs a script that names no image (interpreter sh);
	// DefaultImages has one per interpreter.
	DefaultImage   = "docker.io/library/busybox:1.37"
	DefaultTimeout = 30 * time.Minute
	DefaultTTL     = time.Hour
	defaultUID     = 65532 // jobs.PodSecurity's default (checked by the tests)
	logTailLines   = 200
	maxLogTail     = 64 << 10
)

// DefaultImages are the images a script without an image runs in, by
// interpreter: small, public, official images, pinned to a release line.
// They are suggestions as much as defaults (documented in docs/scripts.md
// and the provider's unikube_script): a cluster without access to Docker
// Hub needs the script's own image.
var DefaultImages = map[string]string{
	InterpreterSh:     DefaultImage,
	InterpreterBash:   "docker.io/library/bash:5.2",
	InterpreterPython: "docker.io/library/python:3.13-alpine",
}

// DefaultImageFor is the image of DefaultImages for an interpreter
// (DefaultImage for sh and anything else).
func DefaultImageFor(interpreter string) string {
	if img, ok := DefaultImages[interpreter]; ok {
		return img
	}
	return DefaultImage
}

// Options of one run.
type Options struct {
	Client kubernetes.Interface
	// Platform fetches the script (unless Fetched is set) and records the
	// run; its token never enters the cluster.
	Platform  *client.Client
	Namespace string
	// Script is "project/name".
	Script string
	// Fetched is the script when the caller already has it (then Platform
	// may be nil: no run is recorded).
	Fetched *client.Script
	// Vars are the values of the script's declared variables; defaults
	// fill the rest.
	Vars map[string]string
	// Follow receives the pod's log as it runs (nil: not streamed).
	Follow io.Writer
	// Timeout bounds the Job (activeDeadlineSeconds) and the wait
	// (default 30m).
	Timeout time.Duration
	// BackoffLimit is how often a failed pod is retried (default 0).
	BackoffLimit int32
	// TTLAfterFinished keeps a finished Job that long (default 1h) for
	// inspection; a succeeded Job is deleted at once unless KeepJob.
	TTLAfterFinished time.Duration
	KeepJob          bool
	// Target is what the run record says it ran against (default
	// "namespace/<ns>").
	Target string
	// RunAsUser/RunAsGroup/FSGroup of the pod (default 65532).
	RunAsUser, RunAsGroup, FSGroup *int64
	// Data fetches one component of a version into DataDir before the
	// script starts (the `script` component kind).
	Data *Data
	// TargetPVC is mounted read-write at TargetDir (optional).
	TargetPVC string
	// NodeName pins the pod (a ReadWriteOnce TargetPVC attached there).
	NodeName string
	// Fit places the pod like the workload the script serves (its pull
	// secrets, nodes, tolerations, priority; see jobs.PodFit); zero for a
	// script that serves none.
	Fit jobs.PodFit
	// Resources of the script's containers; what it leaves out is taken
	// from jobs.DefaultResources, so a namespace whose ResourceQuota
	// demands requests and limits admits the pod.
	Resources *corev1.ResourceRequirements
	// Env adds plain environment variables (not secrets) after the
	// script's variables (e.g. UNIKUBE_COMPONENT).
	Env    map[string]string
	Labels map[string]string
	// Poll is how often the pod is checked (default 500ms).
	Poll   time.Duration
	Logger *slog.Logger
}

// Data names a component whose stream an init container running the agent
// fetches into DataDir: a tar stream (a component with a file index) is
// unpacked, any other stream is written to DataDir/<component>.
type Data struct {
	AgentImage string // e.g. ghcr.io/unikubehq/unikube-agent:v1.2.3
	// ClientVersion: the agent refuses to fetch for a client of another
	// version (see internal/buildinfo.Match); unchecked when empty.
	ClientVersion string
	PlatformURL   string // as pods reach it
	Token         string // a job token that may download the version (kept in the Job's Secret)
	State         string // project/name
	Digest        string // sha256:<hex>
	Component     string
	// CAConfigMap: see jobs.Spec.CAConfigMap (the fetching agent's CA).
	CAConfigMap string
}

// Result is a finished, succeeded run.
type Result struct {
	RunID    string // "" when no run was recorded
	Job, Pod string
	ExitCode int
	Duration time.Duration
	LogTail  string
}

// ValidationError is bad input found before anything was created.
// It names no flag or block: each front end says how its user sets a
// variable (--set, a variables block, a scripts file).
type ValidationError struct {
	Script string
	Msg    string
	// Missing lists the required variables that were not set.
	Missing []string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("script %s: %s", e.Script, e.Msg) }

// FailedError is a run whose script failed (non-zero exit, deadline,
// killed pod, image or configuration error).
type FailedError struct {
	Script    string // project/name
	RunID     string
	Namespace string
	Job, Pod  string
	ExitCode  int    // -1 when the script never exited by itself
	Reason    string // e.g. "exited 1", "DeadlineExceeded"
	Trace     string // python traceback, or the bash/sh error lines
	LogTail   string
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "script %s failed in %s: %s", e.Script, e.Namespace, e.Reason)
	if e.RunID != "" {
		fmt.Fprintf(&b, " (run %s)", e.RunID)
	}
	switch {
	case e.Trace != "":
		fmt.Fprintf(&b, "\n%s", strings.TrimRight(e.Trace, "\n"))
	case e.LogTail != "":
		fmt.Fprintf(&b, "\nlast log lines:\n%s", strings.TrimRight(lastLines(e.LogTail, 20), "\n"))
	}
	if e.Job != "" {
		fmt.Fprintf(&b, "\n(the Job is kept for inspection: kubectl -n %s logs job/%s)", e.Namespace, e.Job)
	}
	return b.String()
}

var (
	envNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	k8sNameRe  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	nonAlnumRe = regexp.MustCompile(`[^A-Za-z0-9_]`)
)

// reserved are environment names a plain-named variable may not replace:
// the script's own machinery needs them. The UNIKUBE_VAR_ form is always
// set.
var reserved = map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "HOSTNAME": true, "PYTHONDONTWRITEBYTECODE": true, "PYTHONUNBUFFERED": true}

// variable is one resolved variable value.
type variable struct {
	Name      string
	Value     string
	Sensitive bool
	// FromPlatform: a sensitive default the platform keeps sealed; Value
	// is filled from the answer to recording the run.
	FromPlatform bool
}

// ParseRef splits "project/name".
func ParseRef(ref string) (project, name string, err error) {
	p, n, ok := strings.Cut(ref, "/")
	if !ok || !k8sNameRe.MatchString(p) || !k8sNameRe.MatchString(n) || strings.Contains(n, "/") {
		return "", "", &ValidationError{Script: ref, Msg: "want a script reference PROJECT/NAME (lowercase DNS labels)"}
	}
	return p, n, nil
}

// Resolve checks vars against the script's declarations and returns every
// value the script gets (declared order): unknown names, missing required
// values and a bad interpreter are errors.
func Resolve(sc *client.Script, vars map[string]string) ([]variable, error) {
	ref := sc.Project + "/" + sc.Name
	switch sc.Interpreter {
	case InterpreterSh, InterpreterBash, InterpreterPython:
	default:
		return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("interpreter %q is not supported: use sh, bash or python", sc.Interpreter)}
	}
	declared := map[string]bool{}
	var out []variable
	var missing []string
	for _, v := range sc.Variables {
		if !envNameRe.MatchString(v.Name) {
			return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("variable %q is not an environment variable name", v.Name)}
		}
		declared[v.Name] = true
		val, ok := vars[v.Name]
		if !ok && v.Default != "" {
			val, ok = v.Default, true
		}
		if !ok && v.Sensitive && v.DefaultSet {
			out = append(out, variable{Name: v.Name, Sensitive: true, FromPlatform: true})
			continue
		}
		if !ok {
			if v.Required {
				missing = append(missing, v.Name)
			}
			continue
		}
		if strings.ContainsRune(val, 0) {
			return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("variable %s contains a NUL byte, which no environment can carry", v.Name)}
		}
		out = append(out, variable{Name: v.Name, Value: val, Sensitive: v.Sensitive})
	}
	var unknown []string
	for k := range vars {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		names := make([]string, 0, len(sc.Variables))
		for _, v := range sc.Variables {
			names = append(names, v.Name)
		}
		return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("unknown variable(s) %s (the script declares: %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))}
	}
	if len(missing) > 0 {
		return nil, &ValidationError{Script: ref, Msg: fmt.Sprintf("required variable(s) %s not set", strings.Join(missing, ", ")), Missing: missing}
	}
	return out, nil
}

// EnvName turns a Secret key into an environment variable name.
func EnvName(key string) string {
	n := strings.ToUpper(nonAlnumRe.ReplaceAllString(key, "_"))
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		n = "_" + n
	}
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailBytes keeps the last n bytes of s, starting at a line.
func tailBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
