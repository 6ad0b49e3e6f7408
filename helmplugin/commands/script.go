package commands

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
)

// newScriptCmd is `helm state script run|list|show|runs|logs`: cluster
// scripts kept on the platform, run as Jobs in Helm's namespace.
func newScriptCmd(s *Settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "script",
		Short: "Run cluster scripts kept on the platform (sh, bash, python) as Jobs",
		Long: `Cluster scripts are sh, bash or python scripts kept on the platform with an
image, variables, a service account and credentials (Kubernetes Secrets).
"helm state script run" runs one as a Job in the namespace, streams its log,
and records the run (status, exit code, log tail, stack trace) on the platform.
The values of sensitive variables and of the mounted credentials are masked
as (sensitive) in the streamed log, the log tail and the stack trace; log
tails and stack traces are shown to appliers and above only. The default of
a sensitive variable is never shown ("default set (hidden)"). The Job's
containers get cpu/memory requests and limits (requests cpu=100m,
memory=128Mi; limits cpu=1, memory=1Gi), so a namespace whose ResourceQuota
demands them admits it.

A script kept without an image runs in a small public image of its
interpreter: ` + scriptrun.DefaultImages[scriptrun.InterpreterSh] + ` (sh), ` + scriptrun.DefaultImages[scriptrun.InterpreterBash] + `
(bash), ` + scriptrun.DefaultImages[scriptrun.InterpreterPython] + ` (python). A cluster that cannot
pull from Docker Hub needs scripts with an image from its own registry.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newScriptRunCmd(s), newScriptListCmd(s), newScriptShowCmd(s), newScriptRunsCmd(s), newScriptLogsCmd(s))
	return cmd
}

type scriptRunFlags struct {
	set, setFile []string
	follow       bool
	timeout      time.Duration
	keepJob      bool
	pvc          string
}

func newScriptRunCmd(s *Settings) *cobra.Command {
	var f scriptRunFlags
	cmd := &cobra.Command{
		Use:   "run PROJECT/SCRIPT [RELEASE]",
		Short: "Run a script in the namespace as a Job and wait for it",
		Long: `Runs PROJECT/SCRIPT in Helm's namespace (--namespace) and waits for it.

Variables: --set NAME=VALUE (repeatable). The value is everything after the
first "=", taken literally (no comma splitting, no escapes); it reaches the
script only through its environment as $NAME and $UNIKUBE_VAR_NAME, never
through its text. Secrets do not belong on a command line: use
--set-file NAME=PATH ("-" reads stdin) for them.

RELEASE (optional) is recorded with the run and given to the script as
$UNIKUBE_RELEASE.

A failed script exits 1 and prints its stack trace (the python traceback, or
the failing bash line and command).`,
		Example: `  helm state script run shop/seed-users my-shop --set COUNT=10 --follow
  helm state script run shop/restore-dump --set-file DUMP_URL=./url.txt -n staging`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runScript(cmd, s, f, a)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.set, "set", nil, "variable NAME=VALUE (repeatable; the value is taken literally)")
	fl.StringArrayVar(&f.setFile, "set-file", nil, "variable NAME=PATH: the value is the file's content (\"-\" = stdin); for secrets")
	fl.BoolVarP(&f.follow, "follow", "f", false, "stream the script's log while it runs")
	fl.DurationVar(&f.timeout, "timeout", scriptrun.DefaultTimeout, "how long the script may run (the Job's activeDeadlineSeconds)")
	fl.StringVar(&f.pvc, "pvc", "", "mount this PVC read-write at /unikube/target ($UNIKUBE_TARGET), e.g. to create a volume's initial files")
	fl.BoolVar(&f.keepJob, "keep-job", false, "keep the Job after a successful run (failed Jobs are always kept for an hour)")
	return cmd
}

// parseVars reads --set and --set-file into one map.
func parseVars(set, setFile []string, stdin io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	put := func(flag, kv string) (string, string, error) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", "", usageErrorf("%s %q: want NAME=VALUE", flag, kv)
		}
		if _, dup := vars[k]; dup {
			return "", "", usageErrorf("variable %s is set twice", k)
		}
		return k, v, nil
	}
	for _, kv := range set {
		k, v, err := put("--set", kv)
		if err != nil {
			return nil, err
		}
		vars[k] = v
	}
	for _, kv := range setFile {
		k, p, err := put("--set-file", kv)
		if err != nil {
			return nil, err
		}
		var b []byte
		if p == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, usageErrorf("--set-file %s: %v", k, err)
		}
		vars[k] = strings.TrimRight(string(b), "\r\n")
	}
	return vars, nil
}

func runScript(cmd *cobra.Command, s *Settings, f scriptRunFlags, a []string) error {
	if _, _, err := scriptrun.ParseRef(a[0]); err != nil {
		return usageErrorf("%v", err)
	}
	vars, err := parseVars(f.set, f.setFile, s.In)
	if err != nil {
		return err
	}
	pc, err := s.Platform()
	if err != nil {
		return err
	}
	cs, _, err := s.Kube()
	if err != nil {
		return err
	}
	ns := s.Namespace()
	o := scriptrun.Options{Client: cs, Platform: pc, Namespace: ns, Script: a[0], Vars: vars,
		Timeout: f.timeout, KeepJob: f.keepJob, TargetPVC: f.pvc, Logger: s.Logger()}
	if len(a) == 2 {
		o.Target = "release/" + a[1] + " in " + ns
		o.Env = map[string]string{"UNIKUBE_RELEASE": a[1]}
		o.Labels = map[string]string{"unikube.dev/release": a[1]}
	}
	if f.follow {
		o.Follow = s.Err
		if s.Output == OutputTable {
			o.Follow = s.Out
		}
	}
	res, err := scriptrun.Run(s.Context(cmd), o)
	var ve *scriptrun.ValidationError
	if errors.As(err, &ve) && len(ve.Missing) > 0 {
		return usageErrorf("%v: pass --set %s=VALUE", err, ve.Missing[0])
	}
	if errors.As(err, &ve) {
		return usageErrorf("%v", err)
	}
	if err != nil {
		return err
	}
	return s.Print(res, func(w io.Writer) error {
		row(w, "RUN", "STATUS", "EXIT", "DURATION", "NAMESPACE")
		row(w, orDash(res.RunID), client.RunSucceeded, res.ExitCode, res.Duration.Round(time.Millisecond), ns)
		return nil
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newScriptListCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "list PROJECT",
		Short: "List a project's scripts",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			list, err := pc.ListScripts(s.Context(cmd), a[0])
			if err != nil {
				return fmt.Errorf("list scripts of %s: %w", a[0], err)
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			return s.Print(list, func(w io.Writer) error {
				row(w, "NAME", "INTERPRETER", "IMAGE", "VARIABLES", "MODIFIED", "DESCRIPTION")
				for _, sc := range list {
					row(w, sc.Name, sc.Interpreter, orDash(sc.Image), orDash(varNames(sc.Variables)), sc.ModifiedAt.UTC().Format(time.RFC3339), sc.Description)
				}
				return nil
			})
		},
	}
}

func varNames(vs []client.Variable) string {
	names := make([]string, 0, len(vs))
	for _, v := range vs {
		n := v.Name
		if v.Required {
			n += "*"
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func getScript(cmd *cobra.Command, s *Settings, ref string) (*client.Client, client.Script, error) {
	project, name, err := scriptrun.ParseRef(ref)
	if err != nil {
		return nil, client.Script{}, usageErrorf("%v", err)
	}
	pc, err := s.Platform()
	if err != nil {
		return nil, client.Script{}, err
	}
	sc, err := pc.GetScript(s.Context(cmd), project, name)
	if err != nil {
		return nil, client.Script{}, fmt.Errorf("script %s: %w", ref, err)
	}
	return pc, sc, nil
}

func newScriptShowCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "show PROJECT/SCRIPT",
		Short: "Show a script: image, interpreter, variables, credentials and body",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			_, sc, err := getScript(cmd, s, a[0])
			if err != nil {
				return err
			}
			sc = hideSensitiveDefaults(sc)
			return s.Print(sc, func(w io.Writer) error {
				row(w, "Script:", sc.Project+"/"+sc.Name)
				row(w, "Description:", sc.Description)
				row(w, "Interpreter:", sc.Interpreter)
				row(w, "Image:", orDash(sc.Image))
				row(w, "Service account:", orDash(sc.ServiceAccount))
				for _, c := range sc.Credentials {
					keys := "all keys"
					if len(c.Keys) > 0 {
						keys = strings.Join(c.Keys, ",")
					}
					row(w, "Credentials:", c.Secret+" ("+keys+")")
				}
				for _, v := range sc.Variables {
					var attrs []string
					if v.Required {
						attrs = append(attrs, "required")
					}
					if v.Sensitive {
						attrs = append(attrs, "sensitive")
					}
					switch {
					case v.Default != "":
						attrs = append(attrs, "default "+v.Default)
					case v.DefaultSet:
						attrs = append(attrs, "default set (hidden)")
					}
					row(w, "Variable:", v.Name+" "+strings.Join(attrs, ", "))
				}
				row(w, "Modified:", sc.ModifiedAt.UTC().Format(time.RFC3339)+" by "+sc.Author)
				row(w, "Body:", "")
				_, err := fmt.Fprintln(w, sc.Body)
				return err
			})
		},
	}
}

// hideSensitiveDefaults drops the default of every sensitive variable, in
// text and JSON/YAML output alike, even if an older platform returned one.
func hideSensitiveDefaults(sc client.Script) client.Script {
	vars := make([]client.Variable, len(sc.Variables))
	for i, v := range sc.Variables {
		if v.Sensitive && v.Default != "" {
			v.Default, v.DefaultSet = "", true
		}
		vars[i] = v
	}
	sc.Variables = vars
	return sc
}

func newScriptRunsCmd(s *Settings) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "runs PROJECT/SCRIPT",
		Short: "List a script's runs, newest first",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, sc, err := getScript(cmd, s, a[0])
			if err != nil {
				return err
			}
			runs, err := pc.ListRuns(s.Context(cmd), sc.Project, sc.Name, limit)
			if err != nil {
				return fmt.Errorf("runs of %s: %w", a[0], err)
			}
			return s.Print(runs, func(w io.Writer) error {
				row(w, "ID", "STATUS", "EXIT", "STARTED", "DURATION", "BY", "TARGET")
				for _, r := range runs {
					exit, started, dur := "-", "-", "-"
					if r.ExitCode != nil {
						exit = fmt.Sprint(*r.ExitCode)
					}
					if r.StartedAt != nil {
						started = r.StartedAt.UTC().Format(time.RFC3339)
						if r.FinishedAt != nil {
							dur = r.FinishedAt.Sub(*r.StartedAt).Round(time.Millisecond).String()
						}
					}
					row(w, r.ID, r.Status, exit, started, dur, r.CreatedBy, orDash(r.Target))
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs to list")
	return cmd
}

func newScriptLogsCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "logs PROJECT/SCRIPT [RUN_ID]",
		Short: "Show the log tail and stack trace kept for a run (default: the newest; appliers and above)",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, sc, err := getScript(cmd, s, a[0])
			if err != nil {
				return err
			}
			ctx := s.Context(cmd)
			var run client.Run
			if len(a) == 2 {
				run, err = pc.GetRun(ctx, sc.Project, sc.Name, a[1])
			} else {
				var runs []client.Run
				runs, err = pc.ListRuns(ctx, sc.Project, sc.Name, 1)
				if err == nil && len(runs) == 0 {
					return fmt.Errorf("script %s has no runs yet", a[0])
				}
				if err == nil {
					run = runs[0]
				}
			}
			if err != nil {
				return fmt.Errorf("run of %s: %w", a[0], err)
			}
			return s.Print(run, func(io.Writer) error {
				// Straight to the output: a tabwriter would realign the log.
				w := s.Out
				exit := "-"
				if run.ExitCode != nil {
					exit = fmt.Sprint(*run.ExitCode)
				}
				fmt.Fprintf(w, "# run %s: %s, exit %s\n", run.ID, run.Status, exit)
				fmt.Fprint(w, run.LogTail)
				if run.StackTrace != "" {
					fmt.Fprintf(w, "\n# stack trace\n%s", run.StackTrace)
				}
				return nil
			})
		},
	}
}
