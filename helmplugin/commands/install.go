package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// Our own flags of install/upgrade; everything else goes to helm.
type seedFlags struct {
	state     string
	maps      []string
	resources []string
	onUpgrade bool
	timeout   time.Duration
	namespace string
	rest      []string
}

// parseSeedFlags takes --state, --map, --agent-resources, --seed-on-upgrade, --seed-timeout
// out of args and leaves the rest (helm's flags and arguments) in rest.
func parseSeedFlags(a []string, upgrade bool) (seedFlags, error) {
	f := seedFlags{timeout: 30 * time.Minute, onUpgrade: upgrade}
	value := func(i *int, name string) (string, error) {
		arg := a[*i]
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v, nil
		}
		if *i+1 >= len(a) {
			return "", usageErrorf("%s needs a value", name)
		}
		*i++
		return a[*i], nil
	}
	for i := 0; i < len(a); i++ {
		arg := a[i]
		name, _, _ := strings.Cut(arg, "=")
		var err error
		switch name {
		case "--state":
			f.state, err = value(&i, name)
		case "--map":
			var v string
			v, err = value(&i, name)
			f.maps = append(f.maps, v)
		case "--agent-resources":
			var v string
			v, err = value(&i, name)
			f.resources = append(f.resources, v)
		case "--seed-timeout":
			var v string
			if v, err = value(&i, name); err == nil {
				f.timeout, err = time.ParseDuration(v)
				if err != nil {
					err = usageErrorf("--seed-timeout %q: %v", v, err)
				}
			}
		case "--seed-on-upgrade":
			f.onUpgrade = arg != "--seed-on-upgrade=false"
		case "--post-renderer", "--post-renderer-args":
			return f, usageErrorf("%s is set by helm state itself", name)
		case "-n", "--namespace":
			var v string
			v, err = value(&i, name)
			f.namespace = v
			f.rest = append(f.rest, "--namespace", v)
		default:
			if strings.HasPrefix(arg, "-n") && len(arg) > 2 {
				f.namespace = strings.TrimPrefix(strings.TrimPrefix(arg, "-n"), "=")
			}
			f.rest = append(f.rest, arg)
		}
		if err != nil {
			return f, err
		}
	}
	if f.state == "" {
		return f, usageErrorf("--state PROJECT/STATE[:TAG] is required")
	}
	if _, err := parseRef(f.state); err != nil {
		return f, err
	}
	return f, nil
}

func newInstallCmd(s *Settings) *cobra.Command { return newHelmWrapCmd(s, "install") }
func newUpgradeCmd(s *Settings) *cobra.Command { return newHelmWrapCmd(s, "upgrade") }

func newHelmWrapCmd(s *Settings, verb string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   verb + " RELEASE CHART --state REF [helm " + verb + " flags]",
		Short: "helm " + verb + " a chart and seed it with a state in the same step (post-" + verb + " hook Jobs)",
		Long: `Runs helm ` + verb + ` with this plugin as post-renderer (Helm 3: the plugin's binary;
Helm 4: a post-renderer plugin, postrenderer/v1, that helm state writes for the
run): it appends one seed Job per
component of the state (the agent restoring that component next to its
service once it answers, with a short-lived download-only token). Helm runs
no hooks that a post-renderer adds, so the Jobs are resources of the release
and --wait also waits for them (--wait-for-jobs is added): helm ` + verb + ` --wait
returns when the release is seeded, and a failed seed fails the release; the
agent's error and log tail are printed. A Job is named after the version, so an
upgrade with the same state keeps it and another version seeds again.

Own flags: --state REF (required), --map component=Kind/NAME,
--agent-resources COMPONENT=cpu=250m,memory=512Mi (as for apply), --seed-timeout,
Every other flag goes to helm ` + verb + `.`,
		Example:            "  helm state " + verb + " shop ./chart --state shop/seed --wait -f values.yaml",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, a []string) error {
			for _, x := range a {
				if x == "-h" || x == "--help" {
					return cmd.Help()
				}
			}
			f, err := parseSeedFlags(a, verb == "upgrade")
			if err != nil {
				return err
			}
			var pos []string
			for _, x := range f.rest {
				if !strings.HasPrefix(x, "-") {
					pos = append(pos, x)
				}
			}
			if len(pos) == 0 {
				return usageErrorf("helm state %s RELEASE CHART --state REF: the release name is missing", verb)
			}
			release := pos[0]
			ns := firstNonEmpty(f.namespace, s.Namespace())
			helmBin := firstNonEmpty(s.Getenv("HELM_BIN"), "helm")
			pr, err := postRendererFor(s.Context(cmd), s, helmBin)
			if err != nil {
				return err
			}
			defer pr.cleanup()
			prArgs := []string{"post-render", "--state=" + f.state, "--release=" + release, "--release-namespace=" + ns,
				"--seed-timeout=" + f.timeout.String()}
			if f.onUpgrade {
				prArgs = append(prArgs, "--on-upgrade")
			}
			for _, m := range f.maps {
				prArgs = append(prArgs, "--map="+m)
			}
			for _, r := range f.resources {
				prArgs = append(prArgs, "--agent-resources="+r)
			}
			if s.PlatformURL != "" {
				prArgs = append(prArgs, "--platform-url="+s.PlatformURL)
			}
			if s.AgentImage != "" {
				prArgs = append(prArgs, "--agent-image="+s.AgentImage)
			}
			// A path and a name, never the certificates themselves.
			if s.CAFile != "" {
				prArgs = append(prArgs, "--ca-file="+s.CAFile)
			}
			if s.CAConfigMap != "" {
				prArgs = append(prArgs, "--ca-configmap="+s.CAConfigMap)
			}
			hargs := append([]string{verb}, f.rest...)
			// The seed Jobs are ordinary resources of the release (Helm 3
			// runs no hooks from post-renderers): --wait must wait for them.
			for _, x := range f.rest {
				if waits(x) {
					hargs = append(hargs, "--wait-for-jobs")
					break
				}
			}
			hargs = append(hargs, "--post-renderer", pr.name)
			for _, p := range prArgs {
				hargs = append(hargs, "--post-renderer-args", p)
			}
			c := exec.CommandContext(s.Context(cmd), helmBin, hargs...)
			c.Stdin, c.Stdout, c.Stderr = s.In, s.Out, s.Err
			if pr.env != nil {
				c.Env = append(os.Environ(), pr.env...)
			}
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					return fmt.Errorf("run %s: %w", helmBin, err)
				}
				if pr.errFile != "" {
					if b, rerr := os.ReadFile(pr.errFile); rerr == nil && len(b) > 0 {
						return fmt.Errorf("helm %s %s: the post-renderer failed: %s", verb, release, b)
					}
				}
				return seedFailure(s, verb, release, ns)
			}
			return nil
		},
	}
	return cmd
}

// waits says whether a helm install/upgrade flag makes helm wait for the
// release (Helm 3: --wait, --atomic; Helm 4 also --wait=STRATEGY and
// --rollback-on-failure; hookOnly waits for hooks only).
func waits(flag string) bool {
	switch flag {
	case "--wait", "--atomic", "--rollback-on-failure", "--atomic=true", "--rollback-on-failure=true":
		return true
	}
	v, ok := strings.CutPrefix(flag, "--wait=")
	return ok && v != "false" && v != "hookOnly"
}

// Helm4PostRenderer is the name of the Helm 4 post-renderer plugin that
// helm state install/upgrade hands Helm 4.
const Helm4PostRenderer = "state-postrenderer"

// postRenderer is what helm install gets as --post-renderer: Helm 3 runs a
// path; Helm 4 runs only post-renderer plugins, so it gets the plugin's
// name and HELM_PLUGINS extended by a directory that holds it.
type postRenderer struct {
	name    string
	env     []string
	cleanup func()
	// errFile is where the Helm 4 post-renderer leaves its error.
	errFile string
}

// EnvPostRenderErrors names the file a post-renderer run by Helm 4 writes
// its error to (Helm 4 drops the plugin's stderr).
const EnvPostRenderErrors = "HELM_STATE_POSTRENDER_ERRORS"

// postRendererFor returns the post-renderer for the helm at helmBin. For
// Helm 4 it writes the post-renderer plugin (postrenderer/v1, running this
// binary's post-render) into a directory of its own, removed by cleanup:
// the release archives hold no directories (Helm 3 cannot extract them),
// and this way the plugin always runs the binary of this very plugin.
func postRendererFor(ctx context.Context, s *Settings, helmBin string) (postRenderer, error) {
	none := postRenderer{cleanup: func() {}}
	self, err := os.Executable()
	if err != nil {
		return none, fmt.Errorf("find the plugin binary for --post-renderer: %w", err)
	}
	major, err := helmMajor(ctx, helmBin)
	if err != nil {
		return none, err
	}
	if major < 4 {
		return postRenderer{name: self, cleanup: func() {}}, nil
	}
	dir, err := os.MkdirTemp("", "helm-state-postrenderer-")
	if err != nil {
		return none, fmt.Errorf("make the helm 4 post-renderer plugin: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	if err := writePostRendererPlugin(filepath.Join(dir, Helm4PostRenderer), self); err != nil {
		cleanup()
		return none, err
	}
	plugins := firstNonEmpty(s.Getenv("HELM_PLUGINS"), s.Helm.PluginsDirectory)
	errFile := filepath.Join(dir, "error")
	return postRenderer{name: Helm4PostRenderer, cleanup: cleanup, errFile: errFile,
		env: []string{"HELM_PLUGINS=" + plugins + string(os.PathListSeparator) + dir, EnvPostRenderErrors + "=" + errFile}}, nil
}

// writePostRendererPlugin writes a Helm 4 post-renderer plugin into dir
// that runs bin with the --post-renderer-args (post-render and its flags).
func writePostRendererPlugin(dir, bin string) error {
	cmd, err := json.Marshal(bin) // a JSON string is a YAML string
	if err != nil {
		return err
	}
	y := `# Written by helm state install/upgrade for Helm 4 (removed after the run).
apiVersion: v1
type: postrenderer/v1
name: ` + Helm4PostRenderer + `
version: "1.0.0"
runtime: subprocess
runtimeConfig:
  platformCommand:
    - command: ` + string(cmd) + `
`
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make the helm 4 post-renderer plugin: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.yaml"), []byte(y), 0o600); err != nil {
		return fmt.Errorf("make the helm 4 post-renderer plugin: %w", err)
	}
	return nil
}

// helmMajor asks the helm that runs the plugin for its major version
// (helm version --template works on Helm 3 and 4).
func helmMajor(ctx context.Context, helmBin string) (int, error) {
	out, err := exec.CommandContext(ctx, helmBin, "version", "--template", "{{.Version}}").Output()
	if err != nil {
		return 0, fmt.Errorf("ask %s for its version (HELM_BIN): %w", helmBin, err)
	}
	return parseHelmMajor(string(out))
}

func parseHelmMajor(v string) (int, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("helm version %q: want v3.x or v4.x", strings.TrimSpace(v))
	}
	return n, nil
}

// seedFailure explains a failed helm install/upgrade: when a seed Job
// failed, its agent's error and log tail.
func seedFailure(s *Settings, verb, release, ns string) error {
	base := fmt.Errorf("helm %s %s failed (see above)", verb, release)
	cs, _, err := s.Kube()
	if err != nil {
		return base
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelRelease + "=" + release + "," + LabelHook + "=true"})
	if err != nil {
		return base
	}
	for _, j := range js.Items {
		if !jobFailed(&j) {
			continue
		}
		comp := j.Labels[jobs.LabelComponent]
		tail := podLogTail(ctx, s, ns, j.Name, 20)
		agentErr := ""
		if l, ok := agentproto.Last(tail, agentproto.TypeError); ok {
			agentErr = l.Error
		}
		if agentErr == "" && len(tail) > 0 {
			agentErr = tail[len(tail)-1]
		}
		fmt.Fprintf(s.Err, "seed Job %s (component %s) log tail:\n  %s\n", j.Name, comp, strings.Join(tail, "\n  "))
		return fmt.Errorf("seeding component %s of release %s failed: %s\n(inspect: kubectl -n %s logs job/%s; fix the state, then helm state apply)", comp, release, agentErr, ns, j.Name)
	}
	return base
}

func jobFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return j.Status.Failed > 0
}

func podLogTail(ctx context.Context, s *Settings, ns, job string, n int) []string {
	cs, _, err := s.Kube()
	if err != nil {
		return nil
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelJobName + "=" + job})
	if err != nil || len(pods.Items) == 0 {
		return nil
	}
	lines := int64(n)
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: jobs.AgentContainer, TailLines: &lines}).Stream(ctx)
	if err != nil {
		return nil
	}
	defer rc.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(rc, 1<<20))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
